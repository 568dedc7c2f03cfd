"""Stand-ins for the model jobs' gold output on generated data, for activation tests and
benchmarks that need scores and segments without training: a deterministic churn
probability from the person id (sha256), a decile and a segment from it."""

from __future__ import annotations

from pyspark.sql import functions as F

from behavior_lake.contracts.ml import CHURN_SCORES, USER_SEGMENTS
from behavior_lake.contracts.silver import EVENTS
from behavior_lake.lake.base import Lake


def standin_scores(lake: Lake, as_of: str = "2026-01-01") -> int:
    """gold.churn_scores and gold.user_segments for every silver person; returns persons."""
    persons = lake.read(EVENTS).select("person_id").distinct().localCheckpoint()
    h = F.conv(F.substring(F.sha2("person_id", 256), 1, 6), 16, 10).cast("double") / 16**6
    now, day = F.current_timestamp(), F.lit(as_of).cast("date")
    scores = persons.select(
        "person_id",
        day.alias("as_of_date"),
        h.alias("churn_probability"),
        (10 - F.floor(h * 10)).cast("int").alias("risk_decile"),
        (h > 0.8).alias("in_capacity"),
        F.lit(30.0).alias("expected_active_days"),
        F.lit("1").alias("model_version"),
        now.alias("scored_at"),
        F.lit(0.5).alias("survival_probability"),
        F.lit(90).alias("survival_window_days"),
    )
    lake.overwrite(CHURN_SCORES.name, scores)
    segment = F.floor(h * 3).cast("int")
    segments = persons.select(
        "person_id",
        day.alias("as_of_date"),
        segment.alias("segment_id"),
        F.concat(F.lit("segment "), segment.cast("string")).alias("segment_name"),
        F.lit("segments").alias("model_name"),
        F.lit("1").alias("model_version"),
        now.alias("scored_at"),
    )
    lake.overwrite(USER_SEGMENTS.name, segments)
    return persons.count()
