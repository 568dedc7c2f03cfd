"""cached_for_training: small training frames become one cached partition."""

from __future__ import annotations

from pyspark.sql import SparkSession

from behavior_lake.ml import cached_for_training


def test_small_frame_is_one_cached_partition(spark: SparkSession) -> None:
    out, rows = cached_for_training(spark.range(0, 100, numPartitions=4), max_rows=100)
    assert rows == 100
    assert out.rdd.getNumPartitions() == 1
    assert out.is_cached
    assert sorted(r.id for r in out.collect()) == list(range(100))
    out.unpersist()


def test_larger_frame_keeps_its_partitions(spark: SparkSession) -> None:
    out, rows = cached_for_training(spark.range(0, 101, numPartitions=4), max_rows=100)
    assert (rows, out.rdd.getNumPartitions()) == (101, 4)
    assert out.is_cached
    out.unpersist()


def test_zero_limit_never_coalesces(spark: SparkSession) -> None:
    out, rows = cached_for_training(spark.range(0, 10, numPartitions=3), max_rows=0)
    assert (rows, out.rdd.getNumPartitions()) == (10, 3)
    out.unpersist()
