"""A table written by one engine is read, appended, merged, deleted and vacuumed by the
other: partitioned, with an evolved schema. Deletion vectors (delta-spark only) are
purged before a vacuum removes the deleted rows from disk, and the delta-rs engine
refuses such a table instead of reading deleted rows back."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from behavior_lake.lake import LakeError, Where, make_lake
from behavior_lake.lake.delta_spark import DeltaSparkLake
from behavior_lake.spark import delta_spark_available
from tests.integration.test_lake_contract import SPEC, frame, parquet_files_on_disk, rows

ENGINES = ("delta-rs", "delta-spark")


@pytest.fixture(autouse=True)
def _both_engines(spark: SparkSession) -> None:
    if not delta_spark_available(spark):
        pytest.skip("interoperability needs both engines: the Delta jars are not cached")


def names(lake, table: str = "test.items") -> dict[int, str]:
    return {r["id"]: r["name"] for r in lake.read(table).collect()}


@pytest.mark.parametrize("writer", ENGINES)
def test_a_table_of_one_engine_is_maintained_by_the_other(
    spark: SparkSession, tmp_path: Path, writer: str
) -> None:
    other = next(e for e in ENGINES if e != writer)
    root = str(tmp_path / "lake")
    a = make_lake(spark, root, writer, {SPEC.name: SPEC})
    a.append("test.items", frame(spark, rows(range(9))))
    # evolved schema: a new nullable column, added by the writer
    extra = frame(spark, rows(range(9, 12))).withColumn("note", F.lit("n"))
    a.append("test.items", extra, evolve=True)
    b = make_lake(spark, root, other)  # no spec: everything comes from the table's log
    assert b.schema("test.items").fieldNames()[-1] == "note"
    assert b.partition_columns("test.items") == ["event_date"]
    assert len(names(b)) == 12
    b.append("test.items", frame(spark, rows(range(12, 14), "b")), evolve=True)
    upd = frame(spark, rows(range(0, 2), "m") + rows(range(20, 21), "m"))
    b.merge("test.items", upd.withColumn("note", F.lit("merged")), ["id"])
    res = b.delete("test.items", Where.eq("id", 5))
    assert res.rows_deleted == 1
    on_disk = parquet_files_on_disk(root)
    removed = b.vacuum("test.items", 0)
    assert removed and not (set(map(_local, removed)) & parquet_files_on_disk(root))
    assert parquet_files_on_disk(root) < on_disk
    want = {i: f"a{i}" for i in range(12) if i != 5}
    want |= {0: "m0", 1: "m1", 20: "m20", 12: "b12", 13: "b13"}
    # the writer sees everything the other engine did, and both agree row for row
    assert names(a) == names(b) == want
    notes = {r["id"]: r["note"] for r in a.read("test.items").collect()}
    assert notes[0] == "merged" and notes[9] == "n" and notes[3] is None
    assert a.version("test.items") == b.version("test.items")


def _local(uri: str) -> str:
    from behavior_lake.lake.base import local_file_path

    return local_file_path(uri)


def test_deletion_vectors_are_purged_and_delta_rs_refuses_them(
    spark: SparkSession, tmp_path: Path
) -> None:
    root = str(tmp_path / "lake")
    ds = DeltaSparkLake(spark, root, {SPEC.name: SPEC}, deletion_vectors=True)
    ds.append("test.items", frame(spark, rows(range(30), day=1)).coalesce(1))
    files_before = parquet_files_on_disk(root)
    res = ds.delete("test.items", F.col("name") == "a7")
    assert res.rows_deleted == 1
    # marked deleted, not rewritten: the row is still in the data file on disk
    metrics = res.extra["metrics"]
    assert metrics.get("numTargetDeletionVectorsAdded", metrics.get("numDeletionVectorsAdded")) >= 1
    assert parquet_files_on_disk(root) == files_before
    assert any("a7" in pq.read_table(f).column("name").to_pylist() for f in files_before)
    assert 7 not in names(ds)
    # the delta-rs engine cannot apply the vectors: it refuses, naming the fix
    rs = make_lake(spark, root, "delta-rs")
    with pytest.raises(LakeError, match="deletionVectors"):
        rs.read("test.items")
    # purge, then vacuum: no file on disk holds the row any more
    assert ds.purge("test.items")
    ds.vacuum("test.items", 0)
    left = parquet_files_on_disk(root)
    assert left and not (left & files_before)
    assert not any("a7" in pq.read_table(f).column("name").to_pylist() for f in left)
    assert len(names(ds)) == 29
    assert Decimal("7.50") not in {r["amount"] for r in ds.read("test.items").collect()}


def test_purge_is_a_no_op_without_deletion_vectors(spark: SparkSession, tmp_path: Path) -> None:
    """Positive control of the above: the default tables have none to purge, and a delete
    rewrites the file instead."""
    root = str(tmp_path / "lake")
    ds = DeltaSparkLake(spark, root, {SPEC.name: SPEC})
    ds.append("test.items", frame(spark, rows(range(30), day=1)).coalesce(1))
    before = parquet_files_on_disk(root)
    res = ds.delete("test.items", F.col("name") == "a7")
    assert res.rows_deleted == 1 and res.files_added == 1
    assert ds.purge("test.items") == {}
    ds.vacuum("test.items", 0)
    assert not (parquet_files_on_disk(root) & before)
    assert len(names(make_lake(spark, root, "delta-rs"))) == 29


def log_files_holding(root: str, needle: str) -> list[str]:
    """Transaction log files (commits, checkpoints, checksums) holding a value."""
    hits = []
    for path in Path(root).rglob("*"):
        if path.is_file() and "_delta_log" in path.parts and needle.encode() in path.read_bytes():
            hits.append(str(path))
    return hits


@pytest.mark.parametrize("engine", ENGINES)
def test_a_deleted_value_leaves_no_trace_in_the_transaction_log(
    spark: SparkSession, tmp_path: Path, engine: str
) -> None:
    """Erasure deletes with Column predicates holding the subject's ids: Delta writes a
    DELETE's predicate into the commit, so delta-spark deletes through a MERGE."""
    root = str(tmp_path / "lake")
    lake = make_lake(spark, root, engine, {SPEC.name: SPEC})
    lake.append("test.items", frame(spark, rows(range(9), "zq-secret-")))
    res = lake.delete("test.items", F.col("name") == F.lit("zq-secret-7"))
    assert res.rows_deleted == 1 and 7 not in names(lake)
    lake.vacuum("test.items", 0)
    assert log_files_holding(root, "zq-secret-7") == []
    # positive control: both engines record a SQL-text predicate in the commit
    lake.delete("test.items", Where.eq("name", "zq-secret-3"))
    assert log_files_holding(root, "zq-secret-3")


@pytest.mark.parametrize("engine", ENGINES)
def test_a_relative_lake_root_works(
    spark: SparkSession, tmp_path: Path, engine: str, monkeypatch
) -> None:
    """`lake.root: lakehouse` (the local default) on either engine."""
    monkeypatch.chdir(tmp_path)
    lake = make_lake(spark, "lakehouse", engine, {SPEC.name: SPEC})
    lake.append("test.items", frame(spark, rows(range(3))))
    assert (tmp_path / "lakehouse" / "test" / "items" / "_delta_log").is_dir()
    assert len(names(lake)) == 3
