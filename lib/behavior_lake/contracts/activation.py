"""Tables of real-time activation (docs/activation.md)."""

from __future__ import annotations

from pyspark.sql import types as T

from behavior_lake.contracts.tables import register
from behavior_lake.lake.base import TableSpec

OUTCOMES = ["fired", "suppressed"]
SUPPRESSION_REASONS = ["erased", "no_consent", "quiet_hours", "cooldown", "cap", "holdout"]
DELIVERY_STATUSES = ["delivered", "dead_letter"]

STREAM_EVENTS = TableSpec(
    name="activation.stream_events",
    key=("message_id",),
    cluster_by="person_id",
    grain="one row per silver-valid event seen by the stream (deduplicated on message_id)",
    partition_by=("event_date",),
    ranges={"value": (0, None)},
    schema=T.StructType(
        [
            T.StructField("message_id", T.StringType(), False),
            T.StructField("person_id", T.StringType(), False),
            T.StructField("event_type", T.StringType(), False),
            T.StructField("event_name", T.StringType(), False),
            T.StructField("event", T.StringType(), True),
            T.StructField("event_ts", T.TimestampType(), False),
            T.StructField("event_date", T.DateType(), False),
            # revenue, else price x quantity (cart events); null for other events
            T.StructField("value", T.DoubleType(), True),
            T.StructField("context", T.MapType(T.StringType(), T.StringType()), True),
            # when the line's file landed (its modification time): the latency clock starts
            T.StructField("landed_at", T.TimestampType(), True),
            T.StructField("stream_batch_id", T.LongType(), False),
        ]
    ),
)

DECISIONS = TableSpec(
    name="activation.decisions",
    key=("decision_id",),
    cluster_by="person_id",
    accepted={"outcome": OUTCOMES, "reason": SUPPRESSION_REASONS, "source": ["stream", "replay"]},
    grain="one row per decision of a rule about a person: fired, or suppressed with the reason",
    partition_by=("decision_date",),
    ranges={"rule_version": (1, None), "latency_ms": (0, None)},
    schema=T.StructType(
        [
            T.StructField("decision_id", T.StringType(), False),
            T.StructField("person_id", T.StringType(), False),
            T.StructField("rule_id", T.StringType(), False),
            T.StructField("rule_version", T.IntegerType(), False),
            T.StructField("campaign", T.StringType(), False),
            T.StructField("channel", T.StringType(), False),
            # the triggering message id, or timer:<deadline epoch ms>
            T.StructField("trigger", T.StringType(), False),
            T.StructField("decision_ts", T.TimestampType(), False),  # event time of the trigger
            T.StructField("decision_date", T.DateType(), False),
            T.StructField("outcome", T.StringType(), False),
            T.StructField("reason", T.StringType(), True),
            T.StructField("inputs", T.StringType(), False),  # JSON
            T.StructField("payload", T.StringType(), False),  # JSON
            T.StructField("landed_at", T.TimestampType(), True),
            T.StructField("decided_at", T.TimestampType(), False),  # wall clock
            T.StructField("latency_ms", T.LongType(), True),  # decided_at - landed_at
            T.StructField("source", T.StringType(), False),  # stream | replay
        ]
    ),
)

DELIVERIES = TableSpec(
    name="activation.deliveries",
    key=("decision_id",),
    accepted={"status": DELIVERY_STATUSES},
    grain="one row per fired decision sent to the webhook (delivered or dead-lettered)",
    ranges={"attempts": (1, None), "http_status": (0, 599)},
    schema=T.StructType(
        [
            T.StructField("decision_id", T.StringType(), False),
            T.StructField("person_id", T.StringType(), False),
            T.StructField("rule_id", T.StringType(), False),
            T.StructField("status", T.StringType(), False),
            T.StructField("attempts", T.IntegerType(), False),
            T.StructField("http_status", T.IntegerType(), True),
            T.StructField("error", T.StringType(), True),
            T.StructField("sent_at", T.TimestampType(), False),
        ]
    ),
)

DEAD_LETTERS = TableSpec(
    name="activation.dead_letters",
    key=("decision_id", "failed_at"),
    grain="one row per delivery given up after the last retry (the body kept for a resend)",
    ranges={"attempts": (1, None)},
    schema=T.StructType(
        [
            T.StructField("decision_id", T.StringType(), False),
            T.StructField("person_id", T.StringType(), False),
            T.StructField("body", T.StringType(), False),
            T.StructField("attempts", T.IntegerType(), False),
            T.StructField("http_status", T.IntegerType(), True),
            T.StructField("error", T.StringType(), True),
            T.StructField("failed_at", T.TimestampType(), False),
        ]
    ),
)

SYNC_STATE = TableSpec(
    name="activation.sync_state",
    key=("person_id",),
    grain="one row per person last sent by the profile sync (what was sent, when)",
    ranges={"churn_probability": (0, 1), "risk_decile": (1, 10)},
    schema=T.StructType(
        [
            T.StructField("person_id", T.StringType(), False),
            T.StructField("segment_id", T.IntegerType(), True),
            T.StructField("churn_probability", T.DoubleType(), True),
            T.StructField("risk_decile", T.IntegerType(), True),
            T.StructField("fingerprint", T.StringType(), False),  # sha256 of what was sent
            T.StructField("synced_at", T.TimestampType(), False),
        ]
    ),
)

register(STREAM_EVENTS, DECISIONS, DELIVERIES, DEAD_LETTERS, SYNC_STATE)
