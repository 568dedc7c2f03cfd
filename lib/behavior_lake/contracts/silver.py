"""Silver tables. silver.events' `properties` struct follows the taxonomy."""

from __future__ import annotations

from pyspark.sql import types as T

from behavior_lake.contracts.codes import (
    ArrivalSource,
    LinkMethod,
    MessageType,
    RejectReason,
    values,
)
from behavior_lake.contracts.tables import register
from behavior_lake.contracts.taxonomy import Taxonomy, properties_type
from behavior_lake.lake.base import TableSpec

EVENTS = "silver.events"


def silver_events_spec(taxonomy: Taxonomy) -> TableSpec:
    return TableSpec(
        name=EVENTS,
        grain="one row per accepted event (unique message_id)",
        key=("message_id",),
        cluster_by="person_id",
        accepted={
            "event_type": values(MessageType),
            "arrival_source": values(ArrivalSource),
        },
        partition_by=("event_date",),
        schema=T.StructType(
            [
                T.StructField("message_id", T.StringType(), False),
                T.StructField("event_type", T.StringType(), False),
                T.StructField("event_name", T.StringType(), False),  # snake_case from the taxonomy
                T.StructField("event", T.StringType(), True),  # the Segment name
                T.StructField("category", T.StringType(), True),
                T.StructField("schema_version", T.IntegerType(), True),
                T.StructField("event_ts", T.TimestampType(), False),  # UTC
                T.StructField("event_date", T.DateType(), False),
                T.StructField("received_at", T.TimestampType(), True),
                # trusted arrival (docs/arrival-time.md) and where it came from
                T.StructField("arrival_ts", T.TimestampType(), False),
                T.StructField("arrival_source", T.StringType(), False),
                T.StructField("is_ts_corrected", T.BooleanType(), False),
                # device minus server clock (sentAt - receivedAt) where event_ts was
                # skew-corrected from originalTimestamp; null where not
                T.StructField("clock_skew_seconds", T.DoubleType(), True),
                # data-quality findings kept with the event (taxonomy on_missing: flag)
                T.StructField("dq_issues", T.ArrayType(T.StringType(), False), False),
                T.StructField("person_id", T.StringType(), False),
                T.StructField("anonymous_id_hash", T.StringType(), True),
                T.StructField("platform", T.StringType(), False),
                T.StructField("page_path", T.StringType(), True),
                T.StructField("properties", properties_type(taxonomy), True),
                T.StructField("properties_extra", T.MapType(T.StringType(), T.StringType()), True),
                T.StructField("revenue", T.DecimalType(18, 2), True),
                T.StructField("currency", T.StringType(), True),
                T.StructField("context", T.MapType(T.StringType(), T.StringType()), True),
                T.StructField("session_id", T.StringType(), False),
                T.StructField("ingest_batch_id", T.StringType(), False),
            ]
        ),
    )


REJECTS = TableSpec(
    name="silver.rejects",
    key=("message_id", "reason"),
    cluster_by="person_id",
    accepted={"reason": values(RejectReason)},
    grain="one row per bronze event rejected by silver validation (reason code)",
    partition_by=("event_date",),
    schema=T.StructType(
        [
            T.StructField("message_id", T.StringType(), False),
            T.StructField("person_id", T.StringType(), True),
            T.StructField("event_type", T.StringType(), True),
            T.StructField("event", T.StringType(), True),
            T.StructField("event_ts", T.TimestampType(), True),
            T.StructField("received_at", T.TimestampType(), True),
            T.StructField("reason", T.StringType(), False),
            T.StructField("detail", T.StringType(), True),
            T.StructField("ingest_batch_id", T.StringType(), False),
            T.StructField("event_date", T.DateType(), True),
        ]
    ),
)

IDENTITY_MAP = TableSpec(
    name="silver.identity_map",
    key=("anonymous_id_hash",),
    accepted={"method": values(LinkMethod)},
    grain="one row per linked anonymous id (hashed)",
    schema=T.StructType(
        [
            T.StructField("anonymous_id_hash", T.StringType(), False),
            T.StructField("person_id", T.StringType(), False),
            T.StructField("method", T.StringType(), False),  # identify | alias
            T.StructField("valid_from", T.TimestampType(), False),
            T.StructField("first_seen", T.TimestampType(), True),
            T.StructField("last_seen", T.TimestampType(), True),
        ]
    ),
)

SESSIONS = TableSpec(
    name="silver.sessions",
    key=("session_id",),
    cluster_by="person_id",
    grain="one row per session (inactivity timeout per person, across devices)",
    partition_by=("session_date",),
    schema=T.StructType(
        [
            T.StructField("session_id", T.StringType(), False),
            T.StructField("person_id", T.StringType(), False),
            T.StructField("session_date", T.DateType(), False),
            T.StructField("session_start_ts", T.TimestampType(), False),
            T.StructField("session_end_ts", T.TimestampType(), False),
            T.StructField("duration_s", T.DoubleType(), False),
            T.StructField("event_count", T.LongType(), False),
            T.StructField("page_count", T.LongType(), False),
            T.StructField("entry_page", T.StringType(), True),
            T.StructField("exit_page", T.StringType(), True),
            T.StructField("is_bounce", T.BooleanType(), False),
            T.StructField("is_engaged", T.BooleanType(), False),
            T.StructField("has_conversion", T.BooleanType(), False),
            T.StructField("revenue", T.DecimalType(18, 2), False),
            T.StructField("platform", T.StringType(), True),
            T.StructField("is_split", T.BooleanType(), False),
        ]
    ),
)

SILVER_BATCHES = TableSpec(
    name="ops.silver_batches",
    key=("ingest_batch_id",),
    grain="one row per bronze ingest batch processed into silver",
    schema=T.StructType(
        [
            T.StructField("ingest_batch_id", T.StringType(), False),
            T.StructField("run_id", T.StringType(), False),
            T.StructField("processed_at", T.TimestampType(), False),
        ]
    ),
)

register(REJECTS, IDENTITY_MAP, SESSIONS, SILVER_BATCHES)
