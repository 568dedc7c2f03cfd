"""gold.daily_kpis: one row per day and platform (plus platform 'all').

DAU/WAU/MAU count distinct persons with at least one event on the day / in the 7 / 30
days ending that day (on that platform for platform rows). Every date between the first
and last activity gets a row, so a quiet day shows zeros rather than disappearing.

Completeness: a day is complete when the data reaches past its end (an event on a later
day); the last day of the data is still filling up and says so (`is_complete` = false), so
its small counts are never read as a drop. `full_window` is true when the 30 days behind
a row's WAU/MAU all lie inside the data (the first 29 days count too few persons).
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

ALL = "all"


def _with_all(df: DataFrame) -> DataFrame:
    return df.unionByName(df.withColumn("platform", F.lit(ALL)))


def active_persons(events: DataFrame) -> DataFrame:
    """One row per person, platform (and 'all') and active date."""
    return _with_all(
        events.select("person_id", "platform", F.col("event_date").alias("active_date"))
    ).distinct()


def rolling_active(active: DataFrame, days: int, name: str) -> DataFrame:
    """Distinct persons active in the `days` days ending on each kpi_date."""
    spread = active.select(
        "person_id",
        "platform",
        F.explode(
            F.sequence(F.col("active_date"), F.date_add(F.col("active_date"), days - 1))
        ).alias("kpi_date"),
    )
    return spread.groupBy("kpi_date", "platform").agg(F.countDistinct("person_id").alias(name))


def daily_kpis(events: DataFrame, sessions: DataFrame) -> DataFrame:
    active = active_persons(events)
    bounds = active.agg(F.min("active_date").alias("lo"), F.max("active_date").alias("hi"))
    platforms = active.select("platform").distinct()
    spine = bounds.select(F.explode(F.sequence("lo", "hi")).alias("kpi_date")).crossJoin(platforms)
    dau = active.groupBy(F.col("active_date").alias("kpi_date"), "platform").agg(
        F.countDistinct("person_id").alias("dau")
    )
    sess = _with_all(
        sessions.select(
            F.col("session_date").alias("kpi_date"), "platform", "duration_s", "has_conversion"
        )
    )
    per_session = sess.groupBy("kpi_date", "platform").agg(
        F.count(F.lit(1)).alias("sessions"),
        F.avg("duration_s").alias("avg_session_duration_s"),
        F.sum(F.col("has_conversion").cast("long")).alias("converting_sessions"),
    )
    orders = _with_all(
        events.filter(F.col("event_name") == "order_completed").select(
            F.col("event_date").alias("kpi_date"), "platform", "revenue"
        )
    )
    money = orders.groupBy("kpi_date", "platform").agg(
        F.count(F.lit(1)).alias("orders"), F.sum("revenue").alias("revenue")
    )
    keys = ["kpi_date", "platform"]
    out = (
        spine.crossJoin(bounds)
        .join(dau, keys, "left")
        .join(rolling_active(active, 7, "wau"), keys, "left")
        .join(rolling_active(active, 30, "mau"), keys, "left")
        .join(per_session, keys, "left")
        .join(money, keys, "left")
    )
    zero = F.lit(0).cast("long")
    return out.select(
        "kpi_date",
        "platform",
        F.coalesce("dau", zero).alias("dau"),
        F.coalesce("wau", zero).alias("wau"),
        F.coalesce("mau", zero).alias("mau"),
        F.when(F.col("mau") > 0, F.coalesce("dau", zero) / F.col("mau")).alias("stickiness"),
        F.coalesce("sessions", zero).alias("sessions"),
        F.col("avg_session_duration_s"),
        F.when(F.col("sessions") > 0, F.col("converting_sessions") / F.col("sessions")).alias(
            "conversion_rate"
        ),
        F.coalesce("orders", zero).alias("orders"),
        F.coalesce("revenue", F.lit(0).cast("decimal(28,2)"))
        .cast("decimal(28,2)")
        .alias("revenue"),
        (F.col("kpi_date") < F.col("hi")).alias("is_complete"),
        (F.date_sub("kpi_date", 29) >= F.col("lo")).alias("full_window"),
    )
