"""Where: structured filters rendered as SQL (quoted) and as Columns, with equal results."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from behavior_lake.lake import Where

TRICKY = ["plain", "O'Brien", "back\\slash", "quote\\'mix", "x' OR '1'='1", ""]


def test_sql_quotes_identifiers_and_literals() -> None:
    w = Where.eq("as_of_date", date(2026, 1, 2)) & Where.isin("model name", ["a'b", "c"])
    assert w.sql() == "`as_of_date` = DATE'2026-01-02' AND `model name` IN ('a\\'b', 'c')"
    assert w.columns == frozenset({"as_of_date", "model name"})
    assert Where.lt("ts", datetime(2026, 1, 2, 3, 4, 5)).sql() == (
        "`ts` < TIMESTAMP'2026-01-02 03:04:05'"
    )
    assert Where.is_null("person_id").sql() == "`person_id` IS NULL"
    assert Where.between("n", 1, 3).sql() == "`n` >= 1 AND `n` <= 3"


def test_bad_values_are_refused() -> None:
    with pytest.raises(ValueError, match="no values"):
        Where.isin("id", [])
    with pytest.raises(ValueError, match="None never compares"):
        Where.eq("id", None)
    with pytest.raises(TypeError, match="no SQL literal"):
        Where.eq("id", object())


def test_sql_and_column_select_the_same_rows(spark: SparkSession) -> None:
    df = spark.createDataFrame([(s, i) for i, s in enumerate(TRICKY)], "name string, n int")
    for value in TRICKY:
        w = Where.eq("name", value)
        by_sql = df.filter(F.expr(w.sql())).collect()
        by_col = df.filter(w.column()).collect()
        assert [r.name for r in by_sql] == [r.name for r in by_col] == [value]
    w = Where.isin("name", TRICKY[1:3]) & Where.gt("n", 1)
    assert df.filter(F.expr(w.sql())).count() == df.filter(w.column()).count() == 1
