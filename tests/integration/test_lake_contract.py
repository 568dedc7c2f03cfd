"""The Lake contract: every engine present must pass the same tests."""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime
from itertools import pairwise
from urllib.parse import unquote, urlparse

import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from behavior_lake.lake import (
    Lake,
    LakeError,
    SchemaMismatchError,
    TableNotFoundError,
    TableSpec,
    Where,
)
from behavior_lake.spark import session_conf

SCHEMA = T.StructType(
    [
        T.StructField("id", T.LongType()),
        T.StructField("name", T.StringType()),
        T.StructField("amount", T.DecimalType(12, 2)),
        T.StructField("event_ts", T.TimestampType()),
        T.StructField("event_date", T.DateType()),
    ]
)
SPEC = TableSpec("test.items", SCHEMA, ("event_date",), grain="one row per id", key=("id",))
TS = datetime(2026, 1, 1, 23, 59, 59, tzinfo=UTC)


def rows(ids: range, name: str = "a", day: int | None = None) -> list[tuple]:
    from decimal import Decimal

    return [(i, f"{name}{i}", Decimal(f"{i}.50"), TS, date(2026, 1, day or 1 + i % 3)) for i in ids]


def frame(spark: SparkSession, data: list[tuple]):
    return spark.createDataFrame(data, SCHEMA)


def parquet_files_on_disk(root: str) -> set[str]:
    found = set()
    for dirpath, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith("_")]
        found |= {os.path.join(dirpath, n) for n in names if n.endswith(".parquet")}
    return found


@pytest.fixture
def items(lake: Lake) -> Lake:
    lake.create(SPEC)
    return lake


def test_append_and_read_back_types(items: Lake, spark: SparkSession) -> None:
    df = frame(spark, rows(range(6)))
    res = items.append("test.items", df)
    assert res.rows_written == 6
    back = items.read("test.items")
    assert back.schema["event_date"].dataType == T.DateType()
    assert back.schema["amount"].dataType == T.DecimalType(12, 2)
    assert back.schema["event_ts"].dataType == T.TimestampType()
    assert_df_equality(back, df, ignore_row_order=True, ignore_nullable=True)


def test_read_many_files_lists_on_the_driver(items: Lake, spark: SparkSession) -> None:
    # One file per day over 40 days: more paths than Spark's distributed-listing default (32)
    from datetime import timedelta

    from behavior_lake.spark import LISTING_THRESHOLD, LOCAL_LISTING_THRESHOLD

    assert spark.conf.get(LISTING_THRESHOLD) == str(LOCAL_LISTING_THRESHOLD)
    data = [(*r[:4], date(2026, 1, 1) + timedelta(days=r[0] // 2)) for r in rows(range(80))]
    items.append("test.items", frame(spark, data).repartition(1))
    assert len(items.active_files("test.items")) == 40
    back = items.read("test.items")
    assert_df_equality(back, frame(spark, data), ignore_row_order=True, ignore_nullable=True)


def test_partitioned_write_makes_one_file_per_value_for_small_data(
    items: Lake, spark: SparkSession
) -> None:
    # 4 input partitions x 3 days would be up to 12 files without the rebalance
    items.append("test.items", frame(spark, rows(range(30))).repartition(4))
    assert len(items.active_files("test.items")) == 3


def test_write_layout_keys_are_partitions_then_person(spark: SparkSession) -> None:
    from behavior_lake.lake.base import rebalanced_for_write

    df = spark.createDataFrame([("p1", date(2026, 1, 1))], "person_id string, event_date date")
    plan = rebalanced_for_write(df, ("event_date",))._jdf.queryExecution().analyzed().toString()
    assert re.search(
        r"RepartitionByExpression \[event_date#\d+ ASC NULLS FIRST, person_id#\d+ ASC NULLS FIRST\]",
        plan,
    ), plan
    assert re.search(
        r"Sort \[event_date#\d+ ASC NULLS FIRST, person_id#\d+ ASC NULLS FIRST\], false", plan
    )
    no_person = df.select("event_date")
    plan = rebalanced_for_write(no_person, ("event_date",))._jdf.queryExecution().analyzed()
    assert re.search(r"RebalancePartitions \[event_date#\d+\]", plan.toString()), plan.toString()
    assert rebalanced_for_write(df, ()) is df  # unpartitioned tables: written as they come
    # no adaptive execution: nothing would size or coalesce the write tasks
    with session_conf(spark, {"spark.sql.adaptive.enabled": "false"}):
        assert rebalanced_for_write(df, ("event_date",)) is df


MAX_ROWS = "spark.sql.files.maxRecordsPerFile"
PERSON_SPEC = TableSpec(
    "test.person_days",
    T.StructType(
        [
            T.StructField("person_id", T.StringType()),
            T.StructField("n", T.LongType()),
            T.StructField("event_date", T.DateType()),
        ]
    ),
    ("event_date",),
    grain="one row per person per day per n",
    key=("person_id", "event_date", "n"),
    cluster_by="person_id",
)


@pytest.mark.parametrize(
    ("max_rows", "min_files", "max_files"),
    # 4 write tasks kept apart (no coalescing) over 3 days, input spread over 4
    # partitions: a hash layout writes 4 x 3 files whose persons overlap; ranges give
    # <= 3 + 4 - 1 files. A cap on rows per file (Spark's maxRecordsPerFile) cuts the
    # sorted ranges further: >= 600 / 40 files.
    [(None, 3, 6), (40, 15, 30)],
)
def test_write_layout_gives_each_file_a_person_range_of_one_day(
    lake: Lake, spark: SparkSession, max_rows: int | None, min_files: int, max_files: int
) -> None:
    import pyarrow.parquet as pq

    lake.create(PERSON_SPEC)
    data = [(f"p{p:03d}", n, date(2026, 1, 1 + (p + n) % 3)) for p in range(200) for n in range(3)]
    df = spark.createDataFrame(data, PERSON_SPEC.schema).repartition(4)
    layout = {
        "spark.sql.shuffle.partitions": "4",
        "spark.sql.adaptive.coalescePartitions.enabled": "false",
        MAX_ROWS: str(max_rows or 0),  # 0: no cap
    }
    with session_conf(spark, layout):
        lake.append("test.person_days", df)
    files = lake.active_files("test.person_days")
    assert min_files <= len(files) <= max_files, files
    by_day: dict[str, list[tuple[str, str]]] = {}
    total = 0
    for f in files:
        local = unquote(urlparse(f).path) if ":" in f.split("/")[0] else f
        persons = pq.read_table(local, columns=["person_id"]).column(0).to_pylist()
        total += len(persons)
        assert len(persons) <= (max_rows or len(data)), f
        assert persons == sorted(persons), f  # persons stay together inside a file
        day = re.search(r"event_date=([0-9-]+)", f).group(1)
        by_day.setdefault(day, []).append((persons[0], persons[-1]))
    assert total == len(data) and len(by_day) == 3
    for ranges in by_day.values():
        ranges.sort()
        for (_, hi), (lo, _) in pairwise(ranges):
            # a person is in one file of a day (or, cut by the cap, in two neighbours)
            assert hi < lo if max_rows is None else hi <= lo, ranges
    assert_df_equality(
        lake.read("test.person_days"),
        spark.createDataFrame(data, PERSON_SPEC.schema),
        ignore_row_order=True,
        ignore_nullable=True,
    )


def test_local_session_keeps_shuffle_partitions_as_coalescing_floor(spark: SparkSession) -> None:
    # Without it adaptive execution may coalesce 4 equal partitions into 3 tasks on 2 cores.
    # The session's start-up conf (jobs sharing the test session reset the runtime value
    # of spark.sql.shuffle.partitions; the default parallelism is fixed at start-up).
    from behavior_lake.spark import coalescing_floor

    started = spark.sparkContext.getConf()
    shuffle = int(started.get("spark.sql.shuffle.partitions"))
    assert spark.sparkContext.defaultParallelism == shuffle == 2
    assert coalescing_floor(7) == {"spark.default.parallelism": "7"}
    # and without the deprecated key that used to do it
    deprecated = "spark.sql.adaptive.coalescePartitions.minPartitionNum"
    assert spark.conf.get(deprecated, None) is None


def test_read_empty_table_has_schema(items: Lake) -> None:
    df = items.read("test.items")
    assert df.schema.fieldNames() == SCHEMA.fieldNames()
    assert df.count() == 0


def test_create_is_idempotent_and_checks_schema(items: Lake) -> None:
    items.create(SPEC)  # same schema: no-op
    other = TableSpec(
        "test.items", T.StructType([T.StructField("id", T.StringType())]), key=("id",)
    )
    with pytest.raises(SchemaMismatchError, match=r"test\.items"):
        items.create(other)


def test_overwrite_whole_table(items: Lake, spark: SparkSession) -> None:
    items.append("test.items", frame(spark, rows(range(6))))
    new = frame(spark, rows(range(100, 102), "b"))
    items.overwrite("test.items", new)
    assert_df_equality(items.read("test.items"), new, ignore_row_order=True, ignore_nullable=True)


def test_overwrite_where_replaces_only_matching_rows(items: Lake, spark: SparkSession) -> None:
    items.append("test.items", frame(spark, rows(range(9))))
    replacement = frame(spark, rows(range(50, 52), "z", day=2))
    res = items.overwrite("test.items", replacement, where=Where.eq("event_date", date(2026, 1, 2)))
    expected = frame(
        spark,
        [r for r in rows(range(9)) if r[4] != date(2026, 1, 2)] + rows(range(50, 52), "z", day=2),
    )
    assert_df_equality(
        items.read("test.items"), expected, ignore_row_order=True, ignore_nullable=True
    )
    assert res.version == items.version("test.items")


def test_overwrite_where_on_data_column(items: Lake, spark: SparkSession) -> None:
    items.append("test.items", frame(spark, rows(range(9))))
    repl = frame(spark, [(3, "new3", None, TS, date(2026, 1, 1))])
    items.overwrite("test.items", repl, where=Where.eq("id", 3))
    got = {r["id"]: r["name"] for r in items.read("test.items").collect()}
    assert got[3] == "new3" and len(got) == 9


def test_overwrite_where_rejects_rows_outside_predicate(items: Lake, spark: SparkSession) -> None:
    items.append("test.items", frame(spark, rows(range(3))))
    with pytest.raises(Exception, match=r"(?i)predicate|replaceWhere|constraint"):
        items.overwrite(
            "test.items",
            frame(spark, rows(range(3), day=3)),
            where=Where.eq("event_date", date(2026, 1, 2)),
        )


def test_merge_is_idempotent(items: Lake, spark: SparkSession) -> None:
    items.append("test.items", frame(spark, rows(range(5))))
    batch = frame(spark, rows(range(3, 8), "m"))
    items.merge("test.items", batch, ["id"])
    first = items.read("test.items")
    expected = frame(spark, rows(range(3)) + rows(range(3, 8), "m"))
    assert_df_equality(first, expected, ignore_row_order=True, ignore_nullable=True)
    items.merge("test.items", batch, ["id"])  # same batch again: same table
    assert_df_equality(
        items.read("test.items"), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_merge_insert_only_keeps_existing(items: Lake, spark: SparkSession) -> None:
    items.append("test.items", frame(spark, rows(range(3))))
    items.merge("test.items", frame(spark, rows(range(2, 4), "m")), ["id"], update_existing=False)
    got = {r["id"]: r["name"] for r in items.read("test.items").collect()}
    assert got == {0: "a0", 1: "a1", 2: "a2", 3: "m3"}


def test_merge_rejects_duplicate_source_keys(items: Lake, spark: SparkSession) -> None:
    dup = frame(spark, rows(range(2)) + rows(range(1, 2), "x"))
    with pytest.raises(LakeError, match="not unique"):
        items.merge("test.items", dup, ["id"])


def test_delete_then_vacuum_removes_files_from_disk(items: Lake, spark: SparkSession) -> None:
    items.append("test.items", frame(spark, rows(range(9))))
    root = items.path("test.items")
    before = parquet_files_on_disk(root)
    res = items.delete("test.items", Where.eq("name", "a4"))
    assert res.rows_deleted == 1
    assert items.read("test.items").filter("name = 'a4'").count() == 0
    # The old file is unreferenced but still on disk (time travel) until vacuum.
    assert before <= parquet_files_on_disk(root)
    removed = items.vacuum("test.items", retention_hours=0)
    after = parquet_files_on_disk(root)
    assert removed, "vacuum removed nothing"
    assert len(after) < len(before) + 1
    active = {
        f.replace("file://", "").replace("file:", "") for f in items.active_files("test.items")
    }
    assert {os.path.realpath(p) for p in after} == {os.path.realpath(p) for p in active}
    assert items.read("test.items").count() == 8


def test_delete_on_partition_column(items: Lake, spark: SparkSession) -> None:
    items.append("test.items", frame(spark, rows(range(9))))
    res = items.delete("test.items", Where.eq("event_date", date(2026, 1, 3)))
    assert res.rows_deleted == 3
    assert res.extra["metadata_only"] is True  # decided from the Where's columns
    remaining = items.read("test.items").select("event_date").distinct().collect()
    assert {r[0] for r in remaining} == {date(2026, 1, 1), date(2026, 1, 2)}
    # a filter on a data column too: files are read and rewritten
    mixed = Where.eq("event_date", date(2026, 1, 2)) & Where.isin("id", [1, 4])
    res = items.delete("test.items", mixed)
    assert res.rows_deleted == 2 and res.extra["metadata_only"] is False


def test_delete_nothing_matches(items: Lake, spark: SparkSession) -> None:
    items.append("test.items", frame(spark, rows(range(3))))
    v = items.version("test.items")
    res = items.delete("test.items", Where.eq("id", 999))
    assert res.rows_deleted == 0
    assert items.read("test.items").count() == 3
    assert items.version("test.items") in (v, v + 1)


def test_time_travel_history_and_restore(items: Lake, spark: SparkSession) -> None:
    items.append("test.items", frame(spark, rows(range(3))))
    v1 = items.version("test.items")
    items.append("test.items", frame(spark, rows(range(3, 5))))
    assert items.read("test.items", version=v1).count() == 3
    assert items.read("test.items").count() == 5
    hist = items.history("test.items")
    assert [h["version"] for h in hist][:2] == [v1 + 1, v1]
    assert all("operation" in h for h in hist)
    items.restore("test.items", v1)
    assert items.read("test.items").count() == 3


def test_schema_mismatch_fails_with_clear_message(items: Lake, spark: SparkSession) -> None:
    bad = frame(spark, rows(range(2))).withColumn("extra", F.lit(1))
    with pytest.raises(SchemaMismatchError, match="unexpected column extra"):
        items.append("test.items", bad)
    wrong_type = frame(spark, rows(range(2))).withColumn("id", F.col("id").cast("string"))
    with pytest.raises(SchemaMismatchError, match="column id: table has bigint, data has string"):
        items.append("test.items", wrong_type)


def test_schema_evolution_when_asked(items: Lake, spark: SparkSession) -> None:
    items.append("test.items", frame(spark, rows(range(2))))
    more = frame(spark, rows(range(2, 4))).withColumn("channel", F.lit("web"))
    items.append("test.items", more, evolve=True)
    back = items.read("test.items")
    assert "channel" in back.columns
    got = {r["id"]: r["channel"] for r in back.collect()}
    assert got == {0: None, 1: None, 2: "web", 3: "web"}


def test_a_grown_contract_adds_its_columns_without_a_migration(
    items: Lake, spark: SparkSession, lake_root: str, engine: str
) -> None:
    """A table created by an older spec gains the columns its spec now declares on the
    next write (lakes built before a release keep working); a column the spec does not
    declare is still refused."""
    from behavior_lake.lake import make_lake

    items.append("test.items", frame(spark, rows(range(2))))
    grown = TableSpec(
        "test.items",
        T.StructType([*SCHEMA.fields, T.StructField("is_complete", T.BooleanType())]),
        ("event_date",), grain="one row per id", key=("id",),
    )  # fmt: skip
    lake = make_lake(spark, lake_root, engine, {"test.items": grown})
    more = frame(spark, rows(range(2, 4))).withColumn("is_complete", F.lit(True))
    lake.append("test.items", more)
    got = {r["id"]: r["is_complete"] for r in lake.read("test.items").collect()}
    assert got == {0: None, 1: None, 2: True, 3: True}
    with pytest.raises(SchemaMismatchError, match="unexpected column extra"):
        lake.append("test.items", more.withColumn("extra", F.lit(1)))


def test_a_grown_struct_keeps_old_rows_and_refuses_a_retyped_field(
    spark: SparkSession, lake_root: str, engine: str
) -> None:
    """A struct column whose spec gained a field (silver's properties when the taxonomy
    gains an event or property): appends and merges carry on without a migration, old
    rows read the new field as null; a field whose type changed is still refused."""
    from behavior_lake.lake import make_lake

    def spec(props: list[T.StructField]) -> TableSpec:
        schema = T.StructType([T.StructField("id", T.LongType()),
                               T.StructField("props", T.StructType(props))])  # fmt: skip
        return TableSpec("test.structs", schema, grain="one row per id", key=("id",))

    old = spec([T.StructField("a", T.StringType())])
    grown = spec([T.StructField("a", T.StringType()), T.StructField("b", T.LongType())])
    first = make_lake(spark, lake_root, engine, {"test.structs": old})
    first.create(old)
    first.append("test.structs", spark.createDataFrame([(1, ("x",))], old.schema))
    lake = make_lake(spark, lake_root, engine, {"test.structs": grown})
    lake.append("test.structs", spark.createDataFrame([(2, ("y", 7))], grown.schema))
    lake.merge("test.structs", spark.createDataFrame([(3, ("z", 8))], grown.schema), ["id"])
    got = {r["id"]: (r["props"]["a"], r["props"]["b"]) for r in lake.read("test.structs").collect()}
    assert got == {1: ("x", None), 2: ("y", 7), 3: ("z", 8)}
    retyped = spec([T.StructField("a", T.LongType()), T.StructField("b", T.LongType())])
    bad = make_lake(spark, lake_root, engine, {"test.structs": retyped})
    with pytest.raises(SchemaMismatchError, match="column props"):
        bad.append("test.structs", spark.createDataFrame([(4, (1, 2))], retyped.schema))


def test_optimize_keeps_content(items: Lake, spark: SparkSession) -> None:
    for i in range(3):
        items.append("test.items", frame(spark, rows(range(i * 3, i * 3 + 3))))
    items.optimize("test.items")
    assert items.read("test.items").count() == 9
    items.optimize("test.items", zorder_by=["id"])
    assert items.read("test.items").count() == 9


def test_unknown_table_errors(lake: Lake) -> None:
    with pytest.raises(TableNotFoundError):
        lake.read("test.nope")
    with pytest.raises(ValueError, match=r"layer\.table"):
        lake.path("NoLayer")


def test_declared_table_created_on_first_write(lake: Lake, spark: SparkSession) -> None:
    from behavior_lake.contracts.ops import JOB_RUNS

    assert not lake.exists("ops.job_runs")
    row = spark.createDataFrame(
        [("r1", "j", "local", "x", TS, TS, "success", 1, 1, None, {"a": 1})], JOB_RUNS.schema
    )
    lake.append("ops.job_runs", row)
    assert lake.read("ops.job_runs").count() == 1


def test_replace_keys_swaps_exactly_those_entities(items: Lake, spark: SparkSession) -> None:
    items.append("test.items", frame(spark, rows(range(9))))
    keys = spark.createDataFrame([(1,), (4,), (99,)], "id long")
    new = frame(spark, rows(range(4, 5), "r") + rows(range(99, 100), "r"))
    res = items.replace_keys("test.items", new, "id", keys)
    got = {r["id"]: r["name"] for r in items.read("test.items").collect()}
    assert got == {
        0: "a0",
        2: "a2",
        3: "a3",
        4: "r4",
        5: "a5",
        6: "a6",
        7: "a7",
        8: "a8",
        99: "r99",
    }
    assert res.rows_deleted == 2


def test_rows_inserted_excludes_rewritten_neighbours(items: Lake, spark: SparkSession) -> None:
    items.append("test.items", frame(spark, rows(range(6), day=1)))  # all in one partition
    keys = spark.createDataFrame([(2,)], "id long")
    res = items.replace_keys("test.items", frame(spark, rows(range(2, 3), "n", day=1)), "id", keys)
    assert res.rows_inserted == 1
    res = items.overwrite(
        "test.items", frame(spark, rows(range(4, 5), "w", day=1)), where=Where.eq("id", 4)
    )
    assert res.rows_inserted == 1
    assert items.read("test.items").count() == 6
