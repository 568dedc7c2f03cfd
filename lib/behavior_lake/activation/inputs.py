"""What the decision engine reads, as pure DataFrame functions shared by the stream and
the replay: silver-shaped events -> engine rows, joined with the latest gold scores,
segments and the erasure list (a stream-static join in the stream)."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from behavior_lake.contracts.governance import SUPPRESSION
from behavior_lake.contracts.ml import CHURN_SCORES, USER_SEGMENTS
from behavior_lake.lake.base import Lake

CONSENT_PREFIX = "consent.categoryPreferences."

# The rows the stateful processor receives (one group per person).
ENGINE_INPUT = T.StructType(
    [
        T.StructField("person_id", T.StringType()),
        T.StructField("message_id", T.StringType()),
        T.StructField("event", T.StringType()),
        T.StructField("event_ts", T.TimestampType()),
        T.StructField("ts_ms", T.LongType()),
        T.StructField("value", T.DoubleType()),
        T.StructField("consents", T.StringType()),  # JSON {category: "true"|"false"}
        T.StructField("churn_probability", T.DoubleType()),
        T.StructField("segment_id", T.IntegerType()),
        T.StructField("segment_name", T.StringType()),
        T.StructField("erased", T.BooleanType()),
        T.StructField("landed_ms", T.LongType()),
    ]
)


def event_value() -> Column:
    """Revenue when the event has it, else price x quantity (cart events), else null."""
    props = F.col("properties")
    price = props["price"].cast("double")
    return F.coalesce(
        F.col("revenue").cast("double"),
        price * F.coalesce(props["quantity"].cast("double"), F.lit(1.0)),
    )


def consents_json() -> Column:
    """The consent categories the event carried (kept under silver's context map)."""
    kept = F.map_filter("context", lambda k, v: k.startswith(CONSENT_PREFIX))
    return F.to_json(
        F.map_from_entries(
            F.transform(
                F.map_entries(kept),
                lambda e: F.struct(
                    F.substring(e["key"], len(CONSENT_PREFIX) + 1, 200).alias("k"),
                    e["value"].alias("v"),
                ),
            )
        )
    )


def engine_rows(events: DataFrame) -> DataFrame:
    """activation.stream_events (or silver.events with `value`) -> engine columns."""
    landed = F.col("landed_at") if "landed_at" in events.columns else F.lit(None)
    return events.select(
        "person_id",
        "message_id",
        "event",
        "event_ts",
        F.unix_millis("event_ts").alias("ts_ms"),
        F.col("value").cast("double").alias("value"),
        consents_json().alias("consents"),
        F.unix_millis(landed.cast("timestamp")).alias("landed_ms"),
    )


def latest(df: DataFrame, order: str) -> DataFrame:
    w = Window.partitionBy("person_id").orderBy(F.col(order).desc())
    return df.withColumn("_r", F.row_number().over(w)).filter("_r = 1").drop("_r")


def person_facts(lake: Lake) -> DataFrame | None:
    """Per person: the latest churn probability and published segment, and whether the
    person was erased. None when none of these tables exists yet."""
    parts = []
    scores = CHURN_SCORES.name
    if lake.exists(scores):
        parts.append(
            latest(lake.read(scores), "as_of_date").select("person_id", "churn_probability")
        )
    if lake.exists(USER_SEGMENTS.name):
        parts.append(
            latest(lake.read(USER_SEGMENTS.name), "as_of_date").select(
                "person_id", "segment_id", "segment_name"
            )
        )
    if not parts:
        return None
    facts = parts[0]
    for p in parts[1:]:
        facts = facts.join(p, "person_id", "full_outer")
    return facts


def with_facts(rows: DataFrame, facts: DataFrame | None, erased: DataFrame | None) -> DataFrame:
    """Engine rows + churn probability, segment and the erased flag (left joins: a
    person without scores still gets event and timer rules)."""
    out = rows
    if facts is not None:
        out = out.join(F.broadcast(facts), "person_id", "left")
    for name, typ in (
        ("churn_probability", "double"),
        ("segment_id", "int"),
        ("segment_name", "string"),
    ):
        if name not in out.columns:
            out = out.withColumn(name, F.lit(None).cast(typ))
    if erased is not None:
        out = out.join(
            F.broadcast(erased.select(F.col("id_sha").alias("_sha")).distinct()),
            F.sha2(F.col("person_id"), 256) == F.col("_sha"),
            "left",
        ).withColumn("erased", F.col("_sha").isNotNull())
        out = out.drop("_sha")
    else:
        out = out.withColumn("erased", F.lit(False))
    return out.select(*ENGINE_INPUT.fieldNames())


def erased_ids(lake: Lake) -> DataFrame | None:
    return lake.read(SUPPRESSION.name) if lake.exists(SUPPRESSION.name) else None
