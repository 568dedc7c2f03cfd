"""Gold tables."""

from __future__ import annotations

from pyspark.sql import types as T

from behavior_lake.contracts.tables import register
from behavior_lake.lake.base import TableSpec

DAILY_KPIS = TableSpec(
    name="gold.daily_kpis",
    grain="one row per day and platform (platform 'all' = every platform)",
    partition_by=("kpi_date",),
    schema=T.StructType(
        [
            T.StructField("kpi_date", T.DateType(), False),
            T.StructField("platform", T.StringType(), False),
            T.StructField("dau", T.LongType(), False),
            T.StructField("wau", T.LongType(), False),
            T.StructField("mau", T.LongType(), False),
            T.StructField("stickiness", T.DoubleType(), True),  # dau / mau
            T.StructField("sessions", T.LongType(), False),
            T.StructField("avg_session_duration_s", T.DoubleType(), True),
            T.StructField(
                "conversion_rate", T.DoubleType(), True
            ),  # converting sessions / sessions
            T.StructField("orders", T.LongType(), False),
            T.StructField("revenue", T.DecimalType(28, 2), False),
        ]
    ),
)

register(DAILY_KPIS)
