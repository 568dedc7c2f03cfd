"""Tables written by the model jobs."""

from __future__ import annotations

from pyspark.sql import types as T

from behavior_lake.contracts.tables import register
from behavior_lake.lake.base import TableSpec

USER_SEGMENTS = TableSpec(
    name="gold.user_segments",
    key=("person_id", "as_of_date"),
    cluster_by="person_id",
    grain="one row per person per as_of_date (scored by the champion segmentation model)",
    partition_by=("as_of_date",),
    ranges={"segment_id": (0, None)},
    schema=T.StructType(
        [
            T.StructField("person_id", T.StringType(), False),
            T.StructField("as_of_date", T.DateType(), False),
            T.StructField("segment_id", T.IntegerType(), False),
            T.StructField("segment_name", T.StringType(), False),
            T.StructField("model_name", T.StringType(), False),
            T.StructField("model_version", T.StringType(), False),
            T.StructField("scored_at", T.TimestampType(), False),
        ]
    ),
)

SEGMENT_DRIFT = TableSpec(
    name="ops.segment_drift",
    key=("as_of_date", "model_name", "model_version"),
    grain="one row per scored as_of_date and model version",
    schema=T.StructType(
        [
            T.StructField("as_of_date", T.DateType(), False),
            T.StructField("model_name", T.StringType(), False),
            T.StructField("model_version", T.StringType(), False),
            T.StructField("persons", T.LongType(), False),
            T.StructField("psi", T.DoubleType(), False),  # segment shares vs training
            T.StructField("shares", T.MapType(T.IntegerType(), T.DoubleType()), False),
            T.StructField("training_shares", T.MapType(T.IntegerType(), T.DoubleType()), False),
            T.StructField("psi_threshold", T.DoubleType(), False),
            T.StructField("retrain_recommended", T.BooleanType(), False),
            T.StructField("computed_at", T.TimestampType(), False),
        ]
    ),
    ranges={"persons": (0, None), "psi": (0, None), "psi_threshold": (0, None)},
)

register(USER_SEGMENTS, SEGMENT_DRIFT)


def _scores_spec(name: str, grain: str) -> TableSpec:
    return TableSpec(
        name=name,
        grain=grain,
        key=("person_id", "as_of_date"),
        cluster_by="person_id",
        partition_by=("as_of_date",),
        schema=T.StructType(
            [
                T.StructField("person_id", T.StringType(), False),
                T.StructField("as_of_date", T.DateType(), False),
                T.StructField("churn_probability", T.DoubleType(), False),
                T.StructField("risk_decile", T.IntegerType(), False),  # 1 = highest risk
                T.StructField("in_capacity", T.BooleanType(), False),
                T.StructField("expected_active_days", T.DoubleType(), True),
                T.StructField("model_version", T.StringType(), False),
                T.StructField("scored_at", T.TimestampType(), False),
                # P(no churn moment within survival_window_days); expected_active_days
                # = expected days before the churn moment within that window
                T.StructField("survival_probability", T.DoubleType(), True),
                T.StructField("survival_window_days", T.IntegerType(), True),
            ]
        ),
        ranges={
            "churn_probability": (0, 1),
            "risk_decile": (1, 10),
            "expected_active_days": (0, 3650),
            "survival_probability": (0, 1),
            "survival_window_days": (1, 3650),
        },
        invariants=(
            "expected_active_days <= survival_window_days",
            # S is non-increasing, so the area under it is at least window * S(window)
            "expected_active_days >= survival_window_days * survival_probability - 1e-6 * survival_window_days",
        ),
    )


CHURN_SCORES = _scores_spec(
    "gold.churn_scores",
    "one row per eligible person per as_of_date (scored by the champion churn model)",
)
CHURN_SCORES_SHADOW = _scores_spec(
    "gold.churn_scores_shadow",
    "one row per eligible person per as_of_date scored by the challenger (shadow mode)",
)

SHADOW_COMPARISON = TableSpec(
    name="ops.shadow_comparison",
    key=("as_of_date", "model_name", "champion_version", "challenger_version"),
    grain="one row per scored as_of_date with a challenger in shadow mode",
    schema=T.StructType(
        [
            T.StructField("as_of_date", T.DateType(), False),
            T.StructField("model_name", T.StringType(), False),
            T.StructField("champion_version", T.StringType(), False),
            T.StructField("challenger_version", T.StringType(), False),
            T.StructField("persons", T.LongType(), False),
            T.StructField("rank_correlation", T.DoubleType(), True),  # Spearman
            T.StructField("capacity", T.LongType(), False),
            T.StructField("top_capacity_overlap", T.DoubleType(), True),  # share of capacity
            T.StructField("compared_at", T.TimestampType(), False),
        ]
    ),
    ranges={
        "persons": (0, None),
        "rank_correlation": (-1, 1),
        "capacity": (0, None),
        "top_capacity_overlap": (0, 1),
    },
)

MODEL_MONITORING = TableSpec(
    name="ops.model_monitoring",
    key=("as_of_date", "model_name", "model_version"),
    grain="one row per scored as_of_date and model version whose labels matured",
    schema=T.StructType(
        [
            T.StructField("as_of_date", T.DateType(), False),
            T.StructField("model_name", T.StringType(), False),
            T.StructField("model_version", T.StringType(), False),
            T.StructField("persons", T.LongType(), False),
            T.StructField("base_rate", T.DoubleType(), True),
            T.StructField("roc_auc", T.DoubleType(), True),
            T.StructField("pr_auc", T.DoubleType(), True),
            T.StructField("brier", T.DoubleType(), True),
            T.StructField("expected_calibration_error", T.DoubleType(), True),
            T.StructField("calibration_json", T.StringType(), True),  # deciles
            T.StructField("retrain_recommended", T.BooleanType(), False),
            T.StructField("computed_at", T.TimestampType(), False),
        ]
    ),
    ranges={
        "persons": (0, None),
        "base_rate": (0, 1),
        "roc_auc": (0, 1),
        "pr_auc": (0, 1),
        "brier": (0, 1),
        "expected_calibration_error": (0, 1),
    },
)

SCORING_REJECTS = TableSpec(
    name="ops.scoring_rejects",
    key=("person_id", "as_of_date", "model_name", "model_version"),
    grain="one row per person and as_of_date whose feature row could not be scored",
    schema=T.StructType(
        [
            T.StructField("person_id", T.StringType(), False),
            T.StructField("as_of_date", T.DateType(), False),
            T.StructField("model_name", T.StringType(), False),
            T.StructField("model_version", T.StringType(), False),
            T.StructField("reason", T.StringType(), False),
            T.StructField("rejected_at", T.TimestampType(), False),
        ]
    ),
)

register(CHURN_SCORES, CHURN_SCORES_SHADOW, SHADOW_COMPARISON, MODEL_MONITORING, SCORING_REJECTS)
