"""Experiment tables: exposures, results per analysis date, campaign lift, SRM alerts."""

from __future__ import annotations

from pyspark.sql import types as T

from behavior_lake.contracts.tables import register
from behavior_lake.lake.base import TableSpec

METRIC_KINDS = ("proportion", "mean", "ratio")
EXCLUSION_REASONS = ("multiple_variations",)
ALERT_KINDS = ("sample_ratio_mismatch",)

EXPOSURES = TableSpec(
    name="gold.experiment_exposures",
    key=("experiment_id", "person_id"),
    cluster_by="person_id",
    accepted={"exclusion_reason": EXCLUSION_REASONS},
    grain="one row per person per experiment: first exposure and its variation",
    ranges={"exposures": (1, None), "variations_seen": (1, None)},
    invariants=("variations_seen = 1 OR is_excluded",),
    schema=T.StructType(
        [
            T.StructField("experiment_id", T.StringType(), False),
            T.StructField("experiment_name", T.StringType(), True),
            T.StructField("person_id", T.StringType(), False),
            T.StructField("variation_id", T.StringType(), False),  # of the first exposure
            T.StructField("variation_name", T.StringType(), True),
            T.StructField("first_exposure_ts", T.TimestampType(), False),
            T.StructField("first_exposure_date", T.DateType(), False),
            T.StructField("exposures", T.LongType(), False),
            T.StructField("variations_seen", T.IntegerType(), False),
            # excluded from the analysis (seen in more than one variation)
            T.StructField("is_excluded", T.BooleanType(), False),
            T.StructField("exclusion_reason", T.StringType(), True),
        ]
    ),
)

_ESTIMATE = [
    T.StructField("n_control", T.LongType(), False),
    T.StructField("n_variation", T.LongType(), False),
    T.StructField("mean_control", T.DoubleType(), False),  # ratio metrics: the ratio
    T.StructField("mean_variation", T.DoubleType(), False),
    # per-person variance (ratio metrics: of the delta-method linearisation)
    T.StructField("var_control", T.DoubleType(), False),
    T.StructField("var_variation", T.DoubleType(), False),
    T.StructField("lift", T.DoubleType(), False),  # variation - control
    T.StructField("lift_ci_low", T.DoubleType(), False),
    T.StructField("lift_ci_high", T.DoubleType(), False),
    T.StructField("relative_lift", T.DoubleType(), True),  # variation / control - 1
    T.StructField("relative_ci_low", T.DoubleType(), True),
    T.StructField("relative_ci_high", T.DoubleType(), True),
    T.StructField("p_value", T.DoubleType(), False),
    # CUPED (covariate from gold.user_features at the last snapshot before exposure)
    T.StructField("covariate", T.StringType(), True),
    T.StructField("cuped_lift", T.DoubleType(), True),
    T.StructField("cuped_ci_low", T.DoubleType(), True),
    T.StructField("cuped_ci_high", T.DoubleType(), True),
    T.StructField("cuped_relative_lift", T.DoubleType(), True),
    T.StructField("cuped_p_value", T.DoubleType(), True),
    T.StructField("variance_reduction", T.DoubleType(), True),  # 1 - var(CUPED) / var(plain)
    # always valid (mSPRT): running minimum p-value, running intersection of intervals
    T.StructField("seq_p_value", T.DoubleType(), False),
    T.StructField("seq_ci_low", T.DoubleType(), True),
    T.StructField("seq_ci_high", T.DoubleType(), True),
]
_ESTIMATE_RANGES: dict[str, tuple[float | None, float | None]] = {
    "n_control": (0, None),
    "n_variation": (0, None),
    "mean_control": (None, None),
    "mean_variation": (None, None),
    "var_control": (0, None),
    "var_variation": (0, None),
    "lift": (None, None),
    "lift_ci_low": (None, None),
    "lift_ci_high": (None, None),
    "relative_lift": (-1, None),
    "relative_ci_low": (None, None),
    "relative_ci_high": (None, None),
    "p_value": (0, 1),
    "cuped_lift": (None, None),
    "cuped_ci_low": (None, None),
    "cuped_ci_high": (None, None),
    "cuped_relative_lift": (None, None),
    "cuped_p_value": (0, 1),
    "variance_reduction": (None, 1),
    "seq_p_value": (0, 1),
    "seq_ci_low": (None, None),
    "seq_ci_high": (None, None),
}
_INTERVALS = ("lift_ci_low <= lift", "lift <= lift_ci_high", "seq_p_value <= 1")

RESULTS = TableSpec(
    name="gold.experiment_results",
    key=("experiment_id", "metric", "variation_id", "analysis_date"),
    accepted={"metric_kind": METRIC_KINDS},
    grain="one row per experiment, metric and variation (vs control) per analysis date",
    partition_by=("analysis_date",),
    ranges={
        **_ESTIMATE_RANGES,
        "p_value_bh": (0, 1),
        "srm_p_value": (0, 1),
        "excluded_persons": (0, None),
    },
    invariants=_INTERVALS,
    schema=T.StructType(
        [
            T.StructField("analysis_date", T.DateType(), False),  # data up to the end of it
            T.StructField("is_latest", T.BooleanType(), False),  # the last analysis date
            T.StructField("experiment_id", T.StringType(), False),
            T.StructField("experiment_name", T.StringType(), True),
            T.StructField("metric", T.StringType(), False),
            T.StructField("metric_kind", T.StringType(), False),
            T.StructField("is_guardrail", T.BooleanType(), False),
            T.StructField("control_id", T.StringType(), False),
            T.StructField("variation_id", T.StringType(), False),
            *_ESTIMATE,
            # Benjamini-Hochberg over the metrics of the experiment and variation that date
            T.StructField("p_value_bh", T.DoubleType(), False),
            T.StructField("is_significant", T.BooleanType(), False),  # p_value_bh < alpha
            T.StructField("seq_significant", T.BooleanType(), False),  # seq_p_value < alpha
            # sample-ratio mismatch of the experiment that date (chi-square, planned split)
            T.StructField("srm_p_value", T.DoubleType(), False),
            T.StructField("srm_flag", T.BooleanType(), False),
            T.StructField("excluded_persons", T.LongType(), False),  # in several variations
            T.StructField("computed_at", T.TimestampType(), False),
        ]
    ),
)

CAMPAIGN_LIFT = TableSpec(
    name="gold.campaign_lift",
    key=("campaign", "metric", "analysis_date"),
    grain="one row per activation campaign per analysis date: treated vs holdout",
    ranges={**_ESTIMATE_RANGES},
    invariants=_INTERVALS,
    schema=T.StructType(
        [
            T.StructField("analysis_date", T.DateType(), False),
            T.StructField("is_latest", T.BooleanType(), False),
            T.StructField("campaign", T.StringType(), False),
            T.StructField("metric", T.StringType(), False),  # the rules' target_metric
            *_ESTIMATE,
            T.StructField("computed_at", T.TimestampType(), False),
        ]
    ),
)

ALERTS = TableSpec(
    name="ops.experiment_alerts",
    key=("experiment_id", "analysis_date", "kind"),
    accepted={"kind": ALERT_KINDS},
    grain="one row per experiment problem found on an analysis date (sample-ratio mismatch)",
    ranges={"p_value": (0, 1), "threshold": (0, 1)},
    schema=T.StructType(
        [
            T.StructField("experiment_id", T.StringType(), False),
            T.StructField("analysis_date", T.DateType(), False),
            T.StructField("kind", T.StringType(), False),
            T.StructField("p_value", T.DoubleType(), False),
            T.StructField("threshold", T.DoubleType(), False),
            T.StructField("detail", T.StringType(), False),  # observed vs planned counts
            T.StructField("detected_at", T.TimestampType(), False),
        ]
    ),
)

register(EXPOSURES, RESULTS, CAMPAIGN_LIFT, ALERTS)
