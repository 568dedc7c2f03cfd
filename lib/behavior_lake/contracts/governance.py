"""Governance tables: retention runs, audit log, erasure requests, suppression list,
subject exports."""

from __future__ import annotations

from pyspark.sql import types as T

from behavior_lake.contracts.codes import (
    ErasureStatus,
    ExportDeletion,
    ExportStatus,
    SuppressionKind,
    values,
)
from behavior_lake.contracts.tables import register
from behavior_lake.lake.base import TableSpec

RETENTION_RUNS = TableSpec(
    name="ops.retention_runs",
    key=("run_id", "table_name"),
    grain="one row per table per enforce_retention run",
    schema=T.StructType(
        [
            T.StructField("run_id", T.StringType(), False),
            T.StructField("table_name", T.StringType(), False),
            T.StructField("column_name", T.StringType(), False),
            T.StructField("retention_days", T.IntegerType(), False),
            T.StructField("cutoff_date", T.DateType(), False),  # rows before it are deleted
            T.StructField("rows_deleted", T.LongType(), False),
            T.StructField("metadata_only", T.BooleanType(), True),
            T.StructField("files_removed", T.LongType(), False),  # by the vacuum
            T.StructField("bytes_freed", T.LongType(), True),  # null when not measurable
            T.StructField("dry_run", T.BooleanType(), False),
            T.StructField("run_at", T.TimestampType(), False),
        ]
    ),
)

AUDIT_LOG = TableSpec(
    name="ops.audit_log",
    unkeyed="append-only log: one action may repeat within the same instant",
    grain="one row per job run or governance action (append-only)",
    schema=T.StructType(
        [
            T.StructField("at", T.TimestampType(), False),
            T.StructField("actor", T.StringType(), False),
            T.StructField("action", T.StringType(), False),
            T.StructField("table_name", T.StringType(), True),
            T.StructField("rows", T.LongType(), True),
            T.StructField("reason", T.StringType(), True),  # purpose / status / request id
            T.StructField("run_id", T.StringType(), True),
        ]
    ),
)

ERASURE_REQUESTS = TableSpec(
    name="ops.erasure_requests",
    key=("request_id",),
    accepted={"status": values(ErasureStatus)},
    grain="one row per erasure request (ids only as SHA-256 of their pseudonym; raw ids "
    "AES-encrypted until the request is done)",
    schema=T.StructType(
        [
            T.StructField("request_id", T.StringType(), False),
            # sha256 of the pseudonyms: the lake keeps no pseudonym of an erased subject
            T.StructField("person_id_sha", T.StringType(), True),
            T.StructField("anonymous_id_sha", T.StringType(), True),
            T.StructField("user_id_enc", T.BinaryType(), True),  # AES-GCM, nulled when done
            T.StructField("anonymous_id_enc", T.BinaryType(), True),
            T.StructField("requested_at", T.TimestampType(), False),
            T.StructField("status", T.StringType(), False),  # pending | done | failed
            T.StructField("processed_at", T.TimestampType(), True),
            T.StructField("rows_deleted", T.LongType(), True),
            T.StructField("tables_touched", T.ArrayType(T.StringType()), True),
            T.StructField("detail", T.StringType(), True),
        ]
    ),
)

SUPPRESSION = TableSpec(
    name="ops.erasure_suppression",
    key=("id_sha", "kind"),
    accepted={"kind": values(SuppressionKind)},
    grain="one row per erased id (sha256 of its pseudonym): later events are dropped at bronze",
    schema=T.StructType(
        [
            T.StructField("id_sha", T.StringType(), False),  # sha256(person_id | anon hash)
            T.StructField("kind", T.StringType(), False),  # user | anonymous
            T.StructField("request_id", T.StringType(), False),
            T.StructField("added_at", T.TimestampType(), False),
        ]
    ),
)

SUBJECT_EXPORTS = TableSpec(
    name="ops.subject_exports",
    key=("export_id",),
    accepted={"status": values(ExportStatus), "deleted_reason": values(ExportDeletion)},
    grain="one row per subject access export written (the subject only as SHA-256 of its "
    "pseudonym); erasure and expiry delete the file and mark the row",
    schema=T.StructType(
        [
            T.StructField("export_id", T.StringType(), False),  # the file name
            T.StructField("subject_sha", T.StringType(), False),  # sha256(person_id)
            T.StructField("location", T.StringType(), False),  # a path or s3://bucket/key
            T.StructField("total_rows", T.LongType(), False),
            T.StructField("created_at", T.TimestampType(), False),
            T.StructField("expires_at", T.TimestampType(), False),
            T.StructField("status", T.StringType(), False),  # available | deleted
            T.StructField("deleted_at", T.TimestampType(), True),
            T.StructField("deleted_reason", T.StringType(), True),  # erasure | expired
        ]
    ),
)

register(RETENTION_RUNS, AUDIT_LOG, ERASURE_REQUESTS, SUPPRESSION, SUBJECT_EXPORTS)
