"""Inactivity-timeout sessions per person across devices (window functions only).

A new session starts when the gap since the person's previous event exceeds the
timeout. A run longer than `max_session_hours` is cut into consecutive slices of
that length measured from its start (`is_split`). Sessions crossing midnight stay
whole and are dated by their start. `session_id` = first 32 hex of
sha256(person_id | start), so the same events always give the same ids.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

ORDER = ("event_ts", "message_id")


def with_session_id(events: DataFrame, timeout_minutes: int, max_hours: int) -> DataFrame:
    """Add session_id, session_start_ts and is_split to every event."""
    by_person = Window.partitionBy("person_id").orderBy(*ORDER)
    gap = F.col("event_ts").cast("long") - F.lag(F.col("event_ts").cast("long")).over(by_person)
    starts = F.when(gap.isNull() | (gap > timeout_minutes * 60), 1).otherwise(0)
    run = events.withColumn(
        "_run",
        F.sum(starts).over(by_person.rowsBetween(Window.unboundedPreceding, Window.currentRow)),
    )
    run_w = Window.partitionBy("person_id", "_run")
    run = run.withColumn("_run_start", F.min("event_ts").over(run_w))
    slice_ = F.floor(
        (F.col("event_ts").cast("long") - F.col("_run_start").cast("long")) / (max_hours * 3600)
    )
    run = run.withColumn("_slice", slice_).withColumn("is_split", F.max("_slice").over(run_w) > 0)
    start = F.min("event_ts").over(Window.partitionBy("person_id", "_run", "_slice"))
    run = run.withColumn("session_start_ts", start)
    sid = F.substring(
        F.sha2(
            F.concat_ws(
                "|",
                F.col("person_id"),
                F.date_format("session_start_ts", "yyyy-MM-dd'T'HH:mm:ss.SSSSSS"),
            ),
            256,
        ),
        1,
        32,
    )
    return run.withColumn("session_id", sid).drop("_run", "_run_start", "_slice")


def sessions_from_events(events: DataFrame, engaged_min_seconds: int) -> DataFrame:
    """silver.sessions rows from events that carry session_id/session_start_ts."""
    is_view = F.col("event_type").isin("page", "screen")
    order_key = F.struct(*[F.col(c) for c in ORDER])
    with_page = F.when(F.col("page_path").isNotNull(), order_key)
    agg = events.groupBy("person_id", "session_id").agg(
        F.min("session_start_ts").alias("session_start_ts"),
        F.max("event_ts").alias("session_end_ts"),
        F.count(F.lit(1)).alias("event_count"),
        F.sum(is_view.cast("long")).alias("page_count"),
        F.min_by("page_path", with_page).alias("entry_page"),
        F.max_by("page_path", with_page).alias("exit_page"),
        F.max((F.col("event_name") == "order_completed").cast("int")).alias("_conv"),
        F.sum(F.when(F.col("event_name") == "order_completed", F.col("revenue"))).alias("revenue"),
        F.min_by("platform", order_key).alias("platform"),
        F.max(F.col("is_split").cast("int")).alias("_split"),
    )
    duration = F.col("session_end_ts").cast("double") - F.col("session_start_ts").cast("double")
    return agg.select(
        "session_id",
        "person_id",
        F.to_date("session_start_ts").alias("session_date"),
        "session_start_ts",
        "session_end_ts",
        duration.alias("duration_s"),
        "event_count",
        "page_count",
        "entry_page",
        "exit_page",
        (F.col("event_count") == 1).alias("is_bounce"),
        (
            (duration >= engaged_min_seconds) | (F.col("page_count") >= 2) | (F.col("_conv") == 1)
        ).alias("is_engaged"),
        (F.col("_conv") == 1).alias("has_conversion"),
        F.coalesce(F.col("revenue"), F.lit(0).cast("decimal(18,2)"))
        .cast("decimal(18,2)")
        .alias("revenue"),
        "platform",
        (F.col("_split") == 1).alias("is_split"),
    )
