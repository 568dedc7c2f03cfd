"""Schema drift: observed property keys and types per event vs the taxonomy."""

from __future__ import annotations

import uuid

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from behavior_lake.bronze.parse import PROPS, properties_variant
from behavior_lake.contracts.taxonomy import Taxonomy


def taxonomy_type_sql(variant_type_sql: str) -> str:
    """Spark's name for a JSON value's type (SQL expression) -> the taxonomy's type name
    (null for JSON null). Built as SQL text so wide projections cost one JVM call."""
    t = variant_type_sql
    return (
        f"CASE WHEN {t} = 'STRING' THEN 'string' "
        f"WHEN {t} IN ('BIGINT', 'INT', 'SMALLINT', 'TINYINT') THEN 'integer' "
        f"WHEN startswith({t}, 'DECIMAL') AND endswith({t}, ',0)') THEN 'integer' "
        f"WHEN startswith({t}, 'DECIMAL') OR {t} IN ('DOUBLE', 'FLOAT') THEN 'number' "
        f"WHEN {t} = 'BOOLEAN' THEN 'boolean' WHEN startswith({t}, 'OBJECT') THEN 'object' "
        f"WHEN startswith({t}, 'ARRAY') THEN 'array' WHEN {t} = 'VOID' THEN NULL "
        f"ELSE lower({t}) END"
    )


def compatible_sql(expected: str, observed_sql: str) -> str:
    accepted = "'number', 'integer'" if expected == "number" else f"'{expected}'"
    return f"({observed_sql} IS NULL OR {observed_sql} IN ({accepted}))"


def compatible(expected: Column, observed: Column) -> Column:
    return (
        observed.isNull()
        | (expected == observed)
        | ((expected == "number") & (observed == "integer"))
    )


def detect_drift(events: DataFrame, taxonomy: Taxonomy) -> DataFrame:
    """Drift rows (event_type, event, property, drift_kind, expected_type, observed_type,
    count) for loadable track/page/screen rows of one batch. Needs `_props` (the
    properties as VARIANT, as bronze ingest caches them) or the parsed line `_v`."""
    spark = events.sparkSession
    properties = F.col(PROPS) if PROPS in events.columns else properties_variant()
    rows = events.filter(F.col("event_type").isin("track", "page", "screen"))
    known = taxonomy.events_frame(spark).select("event")
    props = taxonomy.properties_frame(spark).select("event", "property", "expected_type")

    unknown_events = (
        rows.join(F.broadcast(known), on="event", how="left_anti")
        .groupBy("event_type", "event")
        .agg(F.count(F.lit(1)).alias("count"))
        .select(
            "event_type",
            "event",
            F.lit(None).cast("string").alias("property"),
            F.lit("unknown_event").alias("drift_kind"),
            F.lit(None).cast("string").alias("expected_type"),
            F.lit(None).cast("string").alias("observed_type"),
            "count",
        )
    )

    view = f"bl_drift_{uuid.uuid4().hex[:12]}"
    rows.join(F.broadcast(known), on="event", how="left_semi").select(
        "event_type", "event", properties.alias("p")
    ).createOrReplaceTempView(view)
    observed = spark.sql(
        f"SELECT event_type, event, e.key AS property, schema_of_variant(e.value) AS vt "
        f"FROM {view}, LATERAL variant_explode(p) AS e"
    ).select(
        "event_type", "event", "property", F.expr(taxonomy_type_sql("vt")).alias("observed_type")
    )
    spark.catalog.dropTempView(view)  # the plan above is already resolved
    per_key = observed.groupBy("event_type", "event", "property", "observed_type").agg(
        F.count(F.lit(1)).alias("count")
    )
    joined = per_key.join(F.broadcast(props), on=["event", "property"], how="left")
    property_drift = joined.filter(
        F.col("expected_type").isNull()
        | ~compatible(F.col("expected_type"), F.col("observed_type"))
    ).select(
        "event_type",
        "event",
        "property",
        F.when(F.col("expected_type").isNull(), "new_property")
        .otherwise("type_mismatch")
        .alias("drift_kind"),
        "expected_type",
        "observed_type",
        "count",
    )
    return unknown_events.unionByName(property_drift)
