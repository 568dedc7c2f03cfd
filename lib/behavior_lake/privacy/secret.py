"""Key material that reaches executors without entering any query plan.

A literal is part of every plan Spark prints or records: explain output, the SQL tab
of the UI, the event log, the plan of a Delta commit. A scalar subquery over a
one-row local relation is not: plans show `scalar-subquery#12 []` and
`LocalRelation [value#3]`; Spark evaluates the subquery once per query and hands the
value to the tasks with the rest of the serialized work. Nothing is folded into a
literal (a subquery is never constant), so no redaction pattern, which would itself
spell the key out in the session's configuration, is needed.
"""

from __future__ import annotations

import hashlib
import threading

import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession

from behavior_lake.spark import session_conf

_ARROW = "spark.sql.execution.arrow.pyspark.enabled"
_LOCK = threading.Lock()
_CACHE: dict[tuple[int, str, str], Column] = {}


def secret_bytes(value: bytes, name: str) -> Column:
    """`value` as a binary Column of the active session, carried by a scalar subquery."""
    spark = SparkSession.active()
    cache_key = (id(spark), name, hashlib.sha256(value).hexdigest())
    with _LOCK:
        column = _CACHE.get(cache_key)
        if column is None:
            column = _local_relation(spark, name, value).scalar()
            _CACHE[cache_key] = column
    return column


def _local_relation(spark: SparkSession, name: str, value: bytes) -> DataFrame:
    # Through Arrow a pandas frame becomes a LocalRelation held by the driver (no Python
    # worker when the subquery runs); without Arrow it would be a Python RDD.
    with session_conf(spark, {_ARROW: "true"}):
        return spark.createDataFrame(pd.DataFrame({name: [value]}), f"`{name}` binary")
