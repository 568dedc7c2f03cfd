"""gold.experiment_exposures and the analysis units, from "Experiment Viewed" events.

silver.events holds consenting, non-bot persons only, so the exposures inherit that.
A person's first exposure to an experiment fixes its variation and the start of their
metric window; a person seen in more than one variation (a cached page, a second
device before sign-in) cannot be attributed to one and is excluded, counted, and kept
in the table with the reason.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

EXPOSURE_EVENT = "experiment_viewed"  # snake_case of Segment's "Experiment Viewed"
MULTIPLE = "multiple_variations"


def exposures(events: DataFrame) -> DataFrame:
    """One row per person and experiment (gold.experiment_exposures without ranges)."""
    seen = events.filter(F.col("event_name") == EXPOSURE_EVENT).select(
        "person_id",
        F.col("properties.experiment_id").alias("experiment_id"),
        F.struct(
            F.col("event_ts").alias("ts"),
            F.col("message_id").alias("mid"),
            F.col("properties.variation_id").alias("variation_id"),
            F.col("properties.variation_name").alias("variation_name"),
            F.col("properties.experiment_name").alias("experiment_name"),
        ).alias("x"),
        F.col("properties.variation_id").alias("variation_id"),
    )
    seen = seen.filter(F.col("experiment_id").isNotNull() & F.col("variation_id").isNotNull())
    per = seen.groupBy("experiment_id", "person_id").agg(
        F.min("x").alias("first"),
        F.count(F.lit(1)).alias("exposures"),
        F.countDistinct("variation_id").cast("int").alias("variations_seen"),
    )
    excluded = F.col("variations_seen") > 1
    return per.select(
        "experiment_id",
        F.col("first.experiment_name").alias("experiment_name"),
        "person_id",
        F.col("first.variation_id").alias("variation_id"),
        F.col("first.variation_name").alias("variation_name"),
        F.col("first.ts").alias("first_exposure_ts"),
        F.to_date(F.col("first.ts")).alias("first_exposure_date"),
        "exposures",
        "variations_seen",
        excluded.alias("is_excluded"),
        F.when(excluded, F.lit(MULTIPLE)).alias("exclusion_reason"),
    )


def units(exposure_rows: DataFrame) -> DataFrame:
    """The analysed persons: experiment_id, variation_id, person_id, exposure_ts,
    exposure_date (exclusions out)."""
    return exposure_rows.filter(~F.col("is_excluded")).select(
        "experiment_id",
        "variation_id",
        "person_id",
        F.col("first_exposure_ts").alias("exposure_ts"),
        F.col("first_exposure_date").alias("exposure_date"),
    )


def campaign_units(decisions: DataFrame) -> DataFrame:
    """Activation campaigns as experiments: a person's first decision of a campaign that
    either fired or was held out (every other suppression came before the holdout draw,
    so both groups passed the same checks). The holdout is the control; the split is
    the deterministic hash of person and campaign, so a person stays in one group."""
    eligible = decisions.filter(
        (F.col("outcome") == "fired")
        | ((F.col("outcome") == "suppressed") & (F.col("reason") == "holdout"))
    )
    first = eligible.groupBy("campaign", "person_id").agg(
        F.min(F.struct("decision_ts", "outcome")).alias("d")
    )
    return first.select(
        F.col("campaign").alias("experiment_id"),
        F.when(F.col("d.outcome") == "fired", F.lit("treated"))
        .otherwise(F.lit("holdout"))
        .alias("variation_id"),
        "person_id",
        F.col("d.decision_ts").alias("exposure_ts"),
        F.to_date(F.col("d.decision_ts")).alias("exposure_date"),
    )
