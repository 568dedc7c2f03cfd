"""Gold tables."""

from __future__ import annotations

from pyspark.sql import types as T

from behavior_lake.contracts.codes import PathKind, values
from behavior_lake.contracts.tables import register
from behavior_lake.lake.base import TableSpec

DAILY_KPIS = TableSpec(
    name="gold.daily_kpis",
    key=("kpi_date", "platform"),
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
            T.StructField("is_complete", T.BooleanType(), False),  # the day is fully observed
            T.StructField("full_window", T.BooleanType(), False),  # 30 days of data behind it
        ]
    ),
    ranges={
        "dau": (0, None),
        "wau": (0, None),
        "mau": (0, None),
        "stickiness": (0, 1),
        "sessions": (0, None),
        "avg_session_duration_s": (0, None),
        "conversion_rate": (0, 1),
        "orders": (0, None),
        "revenue": (0, None),
    },
    invariants=("dau <= wau", "wau <= mau"),
)

RETENTION_COHORTS = TableSpec(
    name="gold.retention_cohorts",
    key=("cohort_type", "cohort_week", "week_number"),
    grain="one row per cohort type, cohort week and week number (0..weeks)",
    schema=T.StructType(
        [
            T.StructField("cohort_type", T.StringType(), False),
            T.StructField("cohort_week", T.DateType(), False),  # Monday
            T.StructField("week_number", T.IntegerType(), False),
            T.StructField("cohort_size", T.LongType(), False),
            T.StructField("retained", T.LongType(), False),
            T.StructField("retention_rate", T.DoubleType(), False),
            T.StructField("is_complete", T.BooleanType(), False),  # the week is fully observed
        ]
    ),
    ranges={
        "week_number": (0, None),
        "cohort_size": (1, None),
        "retained": (0, None),
        "retention_rate": (0, 1),
    },
    invariants=("retained <= cohort_size", "week_number > 0 OR retained = cohort_size"),
)

FUNNELS = TableSpec(
    name="gold.funnels",
    key=("funnel_name", "funnel_date", "step_index"),
    grain="one row per funnel, entry day and step",
    partition_by=("funnel_date",),
    schema=T.StructType(
        [
            T.StructField("funnel_name", T.StringType(), False),
            T.StructField("funnel_date", T.DateType(), False),
            T.StructField("step_index", T.IntegerType(), False),
            T.StructField("step_name", T.StringType(), False),
            T.StructField("entrants", T.LongType(), False),
            T.StructField("persons", T.LongType(), False),  # reached this step
            T.StructField("step_conversion", T.DoubleType(), True),  # / previous step
            T.StructField("overall_conversion", T.DoubleType(), True),  # / entrants
            T.StructField("median_seconds_from_entry", T.DoubleType(), True),
            T.StructField("window_hours", T.DoubleType(), False),
            T.StructField("is_complete", T.BooleanType(), False),  # every window has closed
        ]
    ),
    ranges={
        "step_index": (0, None),
        "entrants": (0, None),
        "persons": (0, None),
        "step_conversion": (0, 1),
        "overall_conversion": (0, 1),
        "median_seconds_from_entry": (0, None),
        "window_hours": (0, None),
    },
    invariants=("persons <= entrants",),
)

PATHS = TableSpec(
    name="gold.paths",
    key=("kind", "from_event", "to_event", "path"),
    accepted={"kind": values(PathKind)},
    grain=(
        "kind='transition': one row per (from_event, to_event) pair; "
        "kind='top_path': one row per frequent session path (top N)"
    ),
    schema=T.StructType(
        [
            T.StructField("kind", T.StringType(), False),
            T.StructField("from_event", T.StringType(), True),
            T.StructField("to_event", T.StringType(), True),
            T.StructField("path", T.StringType(), True),
            T.StructField("steps", T.IntegerType(), True),
            T.StructField("count", T.LongType(), False),
            T.StructField("probability", T.DoubleType(), False),
            T.StructField("rank", T.IntegerType(), False),
            T.StructField("first_date", T.DateType(), True),
            T.StructField("last_date", T.DateType(), True),
        ]
    ),
    ranges={"steps": (1, None), "count": (1, None), "probability": (0, 1), "rank": (1, None)},
)

VOCABULARY_SCHEMA = T.StructType(
    [
        T.StructField("slot", T.IntegerType(), False),
        T.StructField("ngram", T.StringType(), False),
        T.StructField("n", T.IntegerType(), False),
        T.StructField("person_share", T.DoubleType(), False),
        T.StructField("occurrences", T.LongType(), False),
        T.StructField("score", T.DoubleType(), False),
        T.StructField("learned_from", T.DateType(), False),
        T.StructField("learned_until", T.DateType(), False),  # exclusive
        T.StructField("learned_at", T.TimestampType(), False),
    ]
)
PATH_VOCABULARY = TableSpec(
    name="gold.path_vocabulary",
    key=("slot",),
    grain="one row per click-path feature slot (the n-gram it counts)",
    schema=VOCABULARY_SCHEMA,
    ranges={
        "slot": (0, None),
        "n": (1, None),
        "person_share": (0, 1),
        "occurrences": (1, None),
        "score": (None, None),  # a ranking score: any finite value
    },
)

CATALOG = TableSpec(
    name="gold.feature_catalog",
    key=("feature",),
    grain="one row per feature of gold.user_features",
    schema=T.StructType(
        [
            T.StructField("feature", T.StringType(), False),
            T.StructField("position", T.IntegerType(), False),
            T.StructField("family", T.StringType(), False),
            T.StructField("definition", T.StringType(), False),
            T.StructField("source_tables", T.ArrayType(T.StringType()), False),
            T.StructField("window_days", T.IntegerType(), True),
            T.StructField("unit", T.StringType(), False),
            T.StructField("data_type", T.StringType(), False),
            T.StructField("imputation", T.StringType(), False),
            T.StructField("impute_value", T.DoubleType(), True),
            T.StructField("point_in_time_rule", T.StringType(), False),
            T.StructField("owner", T.StringType(), False),
            T.StructField("updated_at", T.TimestampType(), False),
        ]
    ),
    ranges={"position": (0, None), "window_days": (1, None), "impute_value": (None, None)},
)

DRIFT = TableSpec(
    name="ops.feature_drift",
    key=("feature", "as_of_date"),
    grain="one row per feature and snapshot compared with the previous snapshot",
    partition_by=("as_of_date",),
    schema=T.StructType(
        [
            T.StructField("feature", T.StringType(), False),
            T.StructField("as_of_date", T.DateType(), False),
            T.StructField("reference_as_of_date", T.DateType(), False),
            T.StructField("psi", T.DoubleType(), True),
            T.StructField("null_rate", T.DoubleType(), False),
            T.StructField("reference_null_rate", T.DoubleType(), False),
            T.StructField("rows", T.LongType(), False),
            T.StructField("reference_rows", T.LongType(), False),
            T.StructField("psi_threshold", T.DoubleType(), False),
            T.StructField("is_flagged", T.BooleanType(), False),
            T.StructField("flag_reason", T.StringType(), True),
            T.StructField("computed_at", T.TimestampType(), False),
        ]
    ),
)

register(DAILY_KPIS, RETENTION_COHORTS, FUNNELS, PATHS, PATH_VOCABULARY, CATALOG, DRIFT)


USER_FEATURES = "gold.user_features"


def features_table(feature_fields: list[T.StructField]) -> TableSpec:
    """gold.user_features: the key columns, one column per feature, the stamp. The
    feature columns come from the feature definitions (gold.features), so the catalog
    builds this spec from the settings when the Lake opens."""
    fields = [
        T.StructField("person_id", T.StringType(), False),
        T.StructField("as_of_date", T.DateType(), False),
        *feature_fields,
        T.StructField("computed_at", T.TimestampType(), False),
    ]
    return TableSpec(
        name=USER_FEATURES,
        grain="one row per person per as_of_date (persons with an event before it)",
        key=("person_id", "as_of_date"),
        cluster_by="person_id",
        partition_by=("as_of_date",),
        schema=T.StructType(fields),
    )
