"""Bronze tables and the ops tables the bronze ingest keeps."""

from __future__ import annotations

from pyspark.sql import types as T

from behavior_lake.contracts.codes import (
    DriftKind,
    FileReason,
    FileStatus,
    LineReason,
    MessageType,
    values,
)
from behavior_lake.contracts.tables import register
from behavior_lake.lake.base import TableSpec

_LINEAGE = [
    T.StructField("source_file", T.StringType(), False),
    T.StructField("ingest_batch_id", T.StringType(), False),
    T.StructField("ingested_at", T.TimestampType(), False),
    T.StructField("ingest_date", T.DateType(), False),
]

BRONZE_EVENTS = TableSpec(
    name="bronze.events",
    unkeyed="raw lines: a line repeated in the landing set is one row per copy",
    accepted={"event_type": values(MessageType)},
    grain="one row per landed line with a valid envelope (duplicates included)",
    partition_by=("ingest_date",),
    schema=T.StructType(
        [
            T.StructField("message_id", T.StringType(), False),
            T.StructField("event_type", T.StringType(), False),
            T.StructField("event", T.StringType(), True),
            T.StructField("anonymous_id", T.StringType(), True),
            T.StructField("user_id", T.StringType(), True),
            T.StructField("previous_id", T.StringType(), True),
            T.StructField("event_ts", T.TimestampType(), False),
            T.StructField("sent_at", T.TimestampType(), True),
            T.StructField("received_at", T.TimestampType(), True),
            # The landed line with configured PII fields nulled out (privacy.pii_fields).
            T.StructField("raw_line", T.StringType(), False),
            # PII field path -> base64(AES-GCM(iv || ciphertext || tag)); empty when dropped.
            T.StructField("pii", T.MapType(T.StringType(), T.StringType()), True),
            T.StructField("sampling_weight", T.DoubleType(), False),
            *_LINEAGE,
        ]
    ),
)

BRONZE_QUARANTINE = TableSpec(
    name="bronze.quarantine",
    unkeyed="raw lines that failed to load: identical bad lines are one row each",
    accepted={"reason": values(LineReason, FileReason)},
    grain="one row per landed line that could not be loaded (or per unreadable file)",
    partition_by=("ingest_date",),
    schema=T.StructType(
        [
            T.StructField("raw_line", T.StringType(), True),
            T.StructField("reason", T.StringType(), False),
            T.StructField("detail", T.StringType(), True),
            T.StructField("message_id", T.StringType(), True),
            T.StructField("anonymous_id", T.StringType(), True),
            T.StructField("user_id", T.StringType(), True),
            *_LINEAGE,
        ]
    ),
)

INGESTED_FILES = TableSpec(
    name="ops.ingested_files",
    key=("source_file", "ingest_batch_id", "status"),
    accepted={"status": values(FileStatus)},
    grain="one row per landing file per status change (pending, then done)",
    schema=T.StructType(
        [
            T.StructField("source_file", T.StringType(), False),
            T.StructField("size_bytes", T.LongType(), True),
            T.StructField("modified_at", T.TimestampType(), True),
            T.StructField("ingest_batch_id", T.StringType(), False),
            T.StructField(
                "status", T.StringType(), False
            ),  # pending | done | changed | quarantined
            T.StructField("lines", T.LongType(), True),
            T.StructField("recorded_at", T.TimestampType(), False),
        ]
    ),
)

INGEST_BATCHES = TableSpec(
    name="ops.ingest_batches",
    key=("ingest_batch_id",),
    grain=(
        "one row per bronze ingest batch; "
        "lines_read = bronze + quarantined + sampled_out + suppressed"
    ),
    schema=T.StructType(
        [
            T.StructField("ingest_batch_id", T.StringType(), False),
            T.StructField("run_id", T.StringType(), False),
            T.StructField("files", T.LongType(), False),
            T.StructField("unreadable_files", T.LongType(), False),
            T.StructField("lines_read", T.LongType(), False),
            T.StructField("bronze_rows", T.LongType(), False),
            T.StructField("quarantined_rows", T.LongType(), False),
            T.StructField("sampled_out_rows", T.LongType(), False),
            T.StructField("started_at", T.TimestampType(), False),
            T.StructField("ended_at", T.TimestampType(), False),
            # lines of erased subjects (ops.erasure_suppression): counted, never stored
            T.StructField("suppressed_rows", T.LongType(), True),
        ]
    ),
)

SCHEMA_DRIFT = TableSpec(
    name="ops.schema_drift",
    key=("ingest_batch_id", "event_type", "event", "property", "drift_kind"),
    accepted={"drift_kind": values(DriftKind)},
    grain="one row per batch, event and property that differs from the taxonomy",
    schema=T.StructType(
        [
            T.StructField("ingest_batch_id", T.StringType(), False),
            T.StructField("detected_at", T.TimestampType(), False),
            T.StructField("event_type", T.StringType(), True),
            T.StructField("event", T.StringType(), True),
            T.StructField("property", T.StringType(), True),
            # unknown_event | new_property | type_mismatch
            T.StructField("drift_kind", T.StringType(), False),
            T.StructField("expected_type", T.StringType(), True),
            T.StructField("observed_type", T.StringType(), True),
            T.StructField("count", T.LongType(), False),
        ]
    ),
)

register(BRONZE_EVENTS, BRONZE_QUARANTINE, INGESTED_FILES, INGEST_BATCHES, SCHEMA_DRIFT)
