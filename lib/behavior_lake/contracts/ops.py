"""Operational tables written by every job."""

from __future__ import annotations

from pyspark.sql import types as T

from behavior_lake.contracts.codes import RunStatus, SlaKind, values
from behavior_lake.contracts.tables import register
from behavior_lake.lake.base import TableSpec

JOB_RUNS = TableSpec(
    name="ops.job_runs",
    key=("run_id",),
    accepted={"status": values(RunStatus)},
    grain="one row per job run (failures included)",
    schema=T.StructType(
        [
            T.StructField("run_id", T.StringType(), False),
            T.StructField("job", T.StringType(), False),
            T.StructField("env", T.StringType(), False),
            T.StructField("engine", T.StringType(), True),
            T.StructField("started_at", T.TimestampType(), False),
            T.StructField("ended_at", T.TimestampType(), True),
            T.StructField("status", T.StringType(), False),  # success | failed | killed
            T.StructField("rows_in", T.LongType(), True),
            T.StructField("rows_out", T.LongType(), True),
            T.StructField("error", T.StringType(), True),
            T.StructField("metrics", T.MapType(T.StringType(), T.LongType()), True),
        ]
    ),
)

SLA_BREACHES = TableSpec(
    name="ops.sla_breaches",
    key=("pipeline_run_id", "task", "kind"),
    accepted={"kind": values(SlaKind)},
    grain="one row per SLA breach of a pipeline task (duration or output staleness)",
    schema=T.StructType(
        [
            T.StructField("pipeline_run_id", T.StringType(), False),
            T.StructField("task", T.StringType(), False),
            T.StructField("kind", T.StringType(), False),  # duration | staleness
            T.StructField("observed", T.DoubleType(), True),  # minutes | hours (null = never)
            T.StructField("limit", T.DoubleType(), False),
            T.StructField("detail", T.StringType(), False),
            T.StructField("detected_at", T.TimestampType(), False),
        ]
    ),
)

register(JOB_RUNS, SLA_BREACHES)
