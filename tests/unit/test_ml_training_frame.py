"""cached_for_training: small training frames become one cached partition.
run_concurrently: independent fits side by side, results in task order."""

from __future__ import annotations

import threading

import pytest
from pyspark.sql import SparkSession

from behavior_lake.ml import cached_for_training, run_concurrently


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


def test_run_concurrently_overlaps_tasks_and_keeps_their_order(spark: SparkSession) -> None:
    # both tasks must be running at once to pass the barrier (one after the other, the
    # first would wait for the second and time out)
    gate = threading.Barrier(2, timeout=30)

    def task(n: int) -> int:
        gate.wait()
        return spark.range(n).count()

    assert run_concurrently([lambda: task(5), lambda: task(7)], workers=2) == [5, 7]


def test_run_concurrently_one_worker_runs_in_order_on_the_caller(spark: SparkSession) -> None:
    seen: list[tuple[int, str]] = []

    def task(i: int) -> int:
        seen.append((i, threading.current_thread().name))
        return i * i

    assert run_concurrently([lambda i=i: task(i) for i in range(3)], workers=1) == [0, 1, 4]
    me = threading.current_thread().name
    assert seen == [(0, me), (1, me), (2, me)]


def test_run_concurrently_reraises_a_failing_task() -> None:
    def boom() -> int:
        raise ValueError("fit failed")

    with pytest.raises(ValueError, match="fit failed"):
        run_concurrently([lambda: 1, boom, lambda: 3], workers=3)
