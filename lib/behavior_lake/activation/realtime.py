"""Instant rules in Spark's real-time mode: Kafka in, Kafka out, milliseconds between.

Real-time mode (`trigger(realTime=...)`, Spark 4.1+) keeps one long-running task per Kafka
partition and passes each record through as it arrives. In Spark 4.2 it runs stateless
queries only (projections, filters, broadcast stream-static joins; no transformWithState,
no foreachBatch, no Delta sink), so this path applies the part of the rules that needs no
per-person memory:

- `event` rules: the event name and `min_value`;
- the same line rules as bronze (`classify_lines`: parse, validate, PII, sampling) and
  erased subjects (`suppress_erased`);
- the person: the pseudonymized user id, else the batch identity map (broadcast join),
  else the anonymous id's hash, as silver resolves it without the micro-batch's links;
- the event's own consent category, quiet hours by event time, the holdout bucket
  (sha256(person|campaign), identical to the engine's).

Cooldowns, the daily cap and consent remembered from earlier events need state: the
micro-batch stream (`activation.stream`) stays the decision log of record. Each output
record is JSON with the decision id the micro-batch path gives the same trigger, so a
consumer can reconcile the two.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from behavior_lake.activation.stream import kafka_lines
from behavior_lake.bronze.ingest import classify_with, suppress_erased
from behavior_lake.config import ActivationRule, Settings
from behavior_lake.contracts.silver import IDENTITY_MAP
from behavior_lake.lake.base import Lake
from behavior_lake.privacy.pseudonym import anon_hash, is_junk_id, user_person_id

CONSENT_PATH = "$.context.consent.categoryPreferences."


def holdout_bucket(person: Column, campaign: str) -> Column:
    """engine.holdout_bucket as a column: the first 52 bits of sha256(person|campaign)."""
    digest = F.sha2(F.concat(person, F.lit(f"|{campaign}")), 256)
    return F.conv(F.substring(digest, 1, 13), 16, 10).cast("double") / float(1 << 52)


def decision_id(person: Column, rule: ActivationRule, trigger: Column) -> Column:
    """engine.decision_id as a column."""
    raw = F.concat_ws("|", person, F.lit(rule.id), F.lit(str(rule.version)), trigger)
    return F.substring(F.sha2(raw, 256), 1, 32)


def _in_quiet_hours(ts: Column, settings: Settings) -> Column:
    start, end = settings.activation.quiet_hours.minutes()
    minute = F.hour(ts) * 60 + F.minute(ts)
    if start == end:
        return F.lit(False)
    if start < end:
        return (minute >= start) & (minute < end)
    return (minute >= start) | (minute < end)


def _value() -> Column:
    def prop(name: str) -> Column:
        return F.get_json_object("raw_line", f"$.properties.{name}").cast("double")

    revenue, price = prop("revenue"), prop("price")
    quantity = F.coalesce(prop("quantity"), F.lit(1.0))
    return F.coalesce(revenue, price * quantity)


def _person(lake: Lake, events: DataFrame, key: str) -> DataFrame:
    anon_ok = ~is_junk_id(F.col("anonymous_id"))
    events = events.withColumn("_anon", F.when(anon_ok, anon_hash(F.col("anonymous_id"), key)))
    mapped = F.lit(None).cast("string")
    if lake.exists(IDENTITY_MAP.name):
        known = lake.read(IDENTITY_MAP.name).select(
            F.col("anonymous_id_hash").alias("_anon"), F.col("person_id").alias("_mapped")
        )
        events = events.join(F.broadcast(known), "_anon", "left")
        mapped = F.col("_mapped")
    person = F.when(~is_junk_id(F.col("user_id")), user_person_id(F.col("user_id"), key)).otherwise(
        F.coalesce(mapped, F.col("_anon"))
    )
    return events.withColumn("person_id", person)


def _rule_decision(rule: ActivationRule, settings: Settings) -> Column:
    """The rule's decision for the row as a struct, null when the rule does not match."""
    hit = (F.col("event") == rule.event) & (
        F.coalesce(F.col("value"), F.lit(0.0)) >= rule.min_value
    )
    consent = F.lower(F.get_json_object("raw_line", CONSENT_PATH + rule.consent))
    reason = F.coalesce(
        F.when(F.coalesce(consent, F.lit("")) != "true", F.lit("no_consent"))
        if rule.consent
        else F.lit(None).cast("string"),
        F.when(_in_quiet_hours(F.col("event_ts"), settings), F.lit("quiet_hours")),
        F.when(
            holdout_bucket(F.col("person_id"), rule.campaign) < rule.holdout_share,
            F.lit("holdout"),
        ),
    )
    return F.when(
        hit,
        F.struct(
            decision_id(F.col("person_id"), rule, F.col("message_id")).alias("decision_id"),
            F.col("person_id"),
            F.lit(rule.id).alias("rule_id"),
            F.lit(rule.version).alias("rule_version"),
            F.lit(rule.campaign).alias("campaign"),
            F.lit(rule.channel).alias("channel"),
            F.col("message_id").alias("trigger"),
            F.col("event_ts"),
            F.when(reason.isNull(), F.lit("fired")).otherwise(F.lit("suppressed")).alias("outcome"),
            reason.alias("reason"),
            F.col("value"),
            F.unix_millis("landed_at").alias("landed_ms"),
        ),
    )


def instant_decisions(lake: Lake, records: DataFrame, settings: Settings) -> DataFrame:
    """Kafka records -> one row per (event, matching event rule), ready for a Kafka sink
    (`key` = decision id, `value` = the decision as JSON). Stateless: real-time mode
    (one pass over the source: the rules are an exploded array, not a union)."""
    key = settings.privacy.pseudonym_key
    rules = [r for r in settings.activation.rules if r.enabled and r.kind == "event"]
    if not rules:
        raise ValueError("real-time mode needs at least one enabled rule of kind 'event'")
    classified = classify_with(settings, kafka_lines(records))
    kept = suppress_erased(lake, classified, key).filter(F.col("_outcome") == "bronze")
    events = _person(lake, kept.withColumn("value", _value()), key)
    decided = events.select(
        F.explode(F.array(*[_rule_decision(r, settings) for r in rules])).alias("d")
    ).filter(F.col("d").isNotNull())
    return decided.select(F.col("d.decision_id").alias("key"), F.to_json(F.col("d")).alias("value"))


def start_instant(lake: Lake, settings: Settings, checkpoint: str):
    """Run the instant rules as a real-time query from activation.kafka_topic to
    activation.realtime_topic (update mode, as real-time mode requires)."""
    a = settings.activation
    records = (
        lake.spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", a.kafka_bootstrap)
        .option("subscribe", a.kafka_topic)
        .option("startingOffsets", a.kafka_starting_offsets)
        .load()
    )
    return (
        instant_decisions(lake, records, settings)
        .writeStream.queryName("activation_instant")
        .format("kafka")
        .option("kafka.bootstrap.servers", a.kafka_bootstrap)
        .option("topic", a.realtime_topic)
        .option("checkpointLocation", checkpoint)
        .outputMode("update")
        .trigger(realTime=f"{a.realtime_checkpoint_seconds} seconds")
        .start()
    )
