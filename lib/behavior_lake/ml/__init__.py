"""Segmentation and churn models on gold (Spark ML, MLflow)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from pyspark.sql import DataFrame

log = logging.getLogger(__name__)
T = TypeVar("T")


def run_concurrently(tasks: Sequence[Callable[[], T]], workers: int) -> list[T]:
    """Run independent tasks (each one or more Spark actions) from up to `workers`
    driver threads; results come back in task order. A failing task re-raises here,
    after the tasks already started have finished. workers <= 1: one after the other.

    Spark schedules jobs from several threads of one session side by side. On small
    training sets a model fit is mostly per-job scheduling and py4j round trips, so
    concurrent fits overlap that latency, with the same results. The first fits of a JVM
    gain little on 2 cores: class loading and JIT compilation need the same CPUs.
    Tasks must not use MLflow's fluent API: its active run is per thread; log from the
    calling thread afterwards.
    """
    if workers <= 1 or len(tasks) <= 1:
        return [task() for task in tasks]
    with ThreadPoolExecutor(
        max_workers=min(workers, len(tasks)), thread_name_prefix="ml-fit"
    ) as pool:
        futures = [pool.submit(task) for task in tasks]
        return [f.result() for f in futures]


def cached_for_training(df: DataFrame, max_rows: int) -> tuple[DataFrame, int]:
    """Cache `df` and count it; a frame of at most `max_rows` rows is cached as one
    partition instead (0 = never). Returns (cached frame, rows).

    Iterative Spark ML fitters (L-BFGS, boosted trees, k-means) run one or more jobs
    per iteration; on a few thousand rows each job's cost is scheduling one task per
    partition, so one partition fits several times faster (figures:
    bench/results/history.md).
    """
    df = df.cache()
    rows = df.count()
    if 0 < rows <= max_rows and df.rdd.getNumPartitions() > 1:
        one = df.coalesce(1).cache()
        one.count()
        df.unpersist()
        log.info("training frame: %d rows cached as one partition", rows)
        return one, rows
    return df, rows
