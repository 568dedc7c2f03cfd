"""Published columns declare their valid range; range_problems finds rows outside it."""

from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import types as T

from behavior_lake.contracts.checks import numeric_columns, range_problems
from behavior_lake.contracts.tables import TABLES
from behavior_lake.lake.base import TableSpec

# numeric columns whose range is the whole line (none published today)
OPEN = {}

SPEC = TableSpec(
    name="gold.example",
    key=("k",),
    schema=T.StructType(
        [
            T.StructField("k", T.StringType(), False),
            T.StructField("rate", T.DoubleType(), True),
            T.StructField("n", T.LongType(), True),
            T.StructField("m", T.LongType(), True),
        ]
    ),
    ranges={"rate": (0, 1), "n": (0, None)},
    invariants=("n <= m",),
)


def test_every_published_number_has_a_range() -> None:
    published = [s for s in TABLES.values() if s.name.startswith("gold.")]
    assert len(published) >= 8
    missing = [
        f"{s.name}.{c}"
        for s in published
        for c in numeric_columns(s)
        if c not in s.ranges and c not in OPEN.get(s.name, ())
    ]
    assert missing == []


def test_range_problems_positive_and_negative(spark: SparkSession) -> None:
    good = spark.createDataFrame(
        [("a", 0.0, 0, 1), ("b", 1.0, 5, 5), ("c", None, None, 0)], SPEC.schema
    )
    assert range_problems(good, SPEC) == []
    bad = spark.createDataFrame(
        [("a", 1.5, 0, 1), ("b", float("nan"), -1, 0), ("c", 0.5, 3, 2)], SPEC.schema
    )
    problems = range_problems(bad, SPEC)
    assert any("rate outside [0, 1] in 2 row(s)" in p for p in problems)
    assert any("n outside [0, inf] in 1 row(s)" in p for p in problems)
    assert any("'n <= m' broken in 1 row(s)" in p for p in problems)
