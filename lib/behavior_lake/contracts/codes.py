"""Status and reason codes: the values a code column may hold (tested on every table).

Each is a `StrEnum`, so members compare equal to the strings stored in the tables.
"""

from __future__ import annotations

from enum import StrEnum


class LineReason(StrEnum):
    """bronze.quarantine.reason for a line, in the order the rules are checked."""

    EMPTY_LINE = "empty_line"
    LINE_TOO_LONG = "line_too_long"
    INVALID_UTF8 = "invalid_utf8"
    MALFORMED_JSON = "malformed_json"
    MULTIPLE_JSON_VALUES = "multiple_json_values"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_MESSAGE_ID = "missing_message_id"
    INVALID_MESSAGE_ID = "invalid_message_id"
    MISSING_TYPE = "missing_type"
    INVALID_TYPE = "invalid_type"
    MISSING_TIMESTAMP = "missing_timestamp"
    INVALID_TIMESTAMP = "invalid_timestamp"
    MISSING_IDENTITY = "missing_identity"
    INVALID_IDENTITY = "invalid_identity"
    MISSING_EVENT = "missing_event"
    MISSING_PREVIOUS_ID = "missing_previous_id"
    INVALID_PROPERTIES = "invalid_properties"
    INVALID_TRAITS = "invalid_traits"


class FileReason(StrEnum):
    """bronze.quarantine.reason for a whole landing file (one row, not read)."""

    UNREADABLE_FILE = "unreadable_file"
    UNEXPECTED_FILE = "unexpected_file"
    SYMBOLIC_LINK = "symbolic_link"
    DECOMPRESSION_LIMIT = "decompression_limit"
    CHANGED_FILE = "changed_file"
    POISON_FILE = "poison_file"


class RejectReason(StrEnum):
    """silver.rejects.reason."""

    UNATTRIBUTABLE = "unattributable"  # only junk ids: cannot belong to anyone
    DUPLICATE_BEYOND_LOOKBACK = "duplicate_beyond_lookback"
    FUTURE_TIMESTAMP = "future_timestamp"  # only with future_timestamp_policy: reject
    TOO_LATE = "too_late"
    UNKNOWN_EVENT = "unknown_event"
    MISSING_REQUIRED_PROPERTY = "missing_required_property"
    INVALID_PROPERTY_TYPE = "invalid_property_type"
    BOT_USER_AGENT = "bot_user_agent"
    BOT_RATE_LIMIT = "bot_rate_limit"


class FileStatus(StrEnum):
    """ops.ingested_files.status."""

    PENDING = "pending"
    DONE = "done"
    QUARANTINED = "quarantined"
    CHANGED = "changed"


class RunStatus(StrEnum):
    """ops.job_runs.status."""

    SUCCESS = "success"
    FAILED = "failed"
    KILLED = "killed"


class ErasureStatus(StrEnum):
    """ops.erasure_requests.status."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


class DriftKind(StrEnum):
    """ops.schema_drift.drift_kind."""

    UNKNOWN_EVENT = "unknown_event"
    NEW_PROPERTY = "new_property"
    TYPE_MISMATCH = "type_mismatch"


class ArrivalSource(StrEnum):
    """silver.events.arrival_source: where the trusted arrival time came from."""

    RECEIVED_AT = "received_at"
    LANDING_PATH = "landing_path"
    INGESTED_AT = "ingested_at"


class MessageType(StrEnum):
    TRACK = "track"
    PAGE = "page"
    SCREEN = "screen"
    IDENTIFY = "identify"
    ALIAS = "alias"


class LinkMethod(StrEnum):
    """silver.identity_map.method."""

    IDENTIFY = "identify"
    ALIAS = "alias"


class ExportStatus(StrEnum):
    """ops.subject_exports.status."""

    AVAILABLE = "available"
    DELETED = "deleted"


class ExportDeletion(StrEnum):
    """ops.subject_exports.deleted_reason."""

    ERASURE = "erasure"  # the subject was erased
    EXPIRED = "expired"  # older than governance.export_keep_days


class SuppressionKind(StrEnum):
    """ops.erasure_suppression.kind."""

    USER = "user"
    ANONYMOUS = "anonymous"


class SlaKind(StrEnum):
    """ops.sla_breaches.kind."""

    DURATION = "duration"
    STALENESS = "staleness"


class PathKind(StrEnum):
    """gold.paths.kind."""

    TRANSITION = "transition"
    TOP_PATH = "top_path"


def values(*enums: type[StrEnum]) -> tuple[str, ...]:
    """The string values of one or more code enums, in declaration order."""
    return tuple(m.value for e in enums for m in e)
