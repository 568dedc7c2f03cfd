"""Landing line -> bronze row or quarantine reason. Pure DataFrame transforms.

Input: one row per landed line with `raw_line` and `source_file`. Parsing uses Spark's
VARIANT (`try_parse_json`), so a JSON type can be checked exactly (a numeric
`messageId` is a wrong type, not the string "5") without any Python UDF.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from behavior_lake.bronze.arrival import arrival_ts
from behavior_lake.contracts.codes import FileReason, LineReason, values
from behavior_lake.contracts.taxonomy import MESSAGE_TYPES, TYPE_EVENT_NAMES
from behavior_lake.privacy.fields import aes_key, encrypt

V = "_v"  # the parsed line (VARIANT), dropped before writing
W = "_w"  # the line parsed inside [ ]: a JSON array of every value on the line
PROPS = "_props"  # its `properties` (VARIANT): all schema-drift detection needs of it

# Quarantine reason codes, in the order they are checked (first failing rule wins).
REASONS = values(LineReason)
FILE_REASONS = values(FileReason)


def jtype(path: str) -> Column:
    """JSON type at `path` as Spark names it (STRING, BIGINT, OBJECT<...>, VOID), or null."""
    return F.schema_of_variant(F.try_variant_get(F.col(V), path, "variant"))


def jstring(path: str) -> Column:
    """The value at `path` if it is a JSON string, else null."""
    return F.when(jtype(path) == "STRING", F.try_variant_get(F.col(V), path, "string"))


# Envelope fields whose JSON type is checked: column suffix -> JSON path.
_TYPED = {
    "mid": "$.messageId",
    "type": "$.type",
    "ts": "$.timestamp",
    "anon": "$.anonymousId",
    "user": "$.userId",
    "event": "$.event",
    "prev": "$.previousId",
    "props": "$.properties",
    "traits": "$.traits",
    "sent": "$.sentAt",
    "recv": "$.receivedAt",
    "orig": "$.originalTimestamp",
}


def _t(name: str) -> Column:
    return F.col(f"_t_{name}")


def _str(name: str) -> Column:
    """The field as a string when its JSON type is STRING, else null."""
    return F.when(_t(name) == "STRING", F.try_variant_get(F.col(V), _TYPED[name], "string"))


def _nonblank(c: Column) -> Column:
    return c.isNotNull() & (F.trim(c) != "")


def with_envelope(df: DataFrame) -> DataFrame:
    """Parse the line once; add the JSON type of each envelope field (`_t_*`) and the
    envelope columns (null where absent or mistyped)."""
    # Parsed inside [ ] so that a line holding several values (`{..}{..}`, `{..}, {..}`,
    # `{..} garbage`) is seen whole: a plain parse keeps the first value and silently
    # drops the rest. One parse either way; the line's value is element 0.
    wrapped = df.withColumn(
        W, F.try_parse_json(F.concat(F.lit("["), F.col("raw_line"), F.lit("]")))
    )
    single = F.try_variant_get(F.col(W), "$[1]", "variant").isNull()
    parsed = wrapped.withColumn(V, F.when(single, F.try_variant_get(F.col(W), "$[0]", "variant")))
    typed = parsed.select("*", *[jtype(path).alias(f"_t_{name}") for name, path in _TYPED.items()])
    event_type = _str("type")
    # `timestamp` is what Segment's servers set; a raw SDK export may carry only the
    # device's `originalTimestamp`.
    ts_raw = F.coalesce(_str("ts"), F.when(~_present("ts"), _str("orig")))
    return typed.select(
        "*",
        _str("mid").alias("message_id"),
        event_type.alias("event_type"),
        F.when(event_type == "track", _str("event"))
        .when(event_type == "page", F.lit(TYPE_EVENT_NAMES["page"]))
        .when(event_type == "screen", F.lit(TYPE_EVENT_NAMES["screen"]))
        .alias("event"),
        _str("anon").alias("anonymous_id"),
        _str("user").alias("user_id"),
        _str("prev").alias("previous_id"),
        ts_raw.alias("_ts_raw"),
        ts_raw.try_cast("timestamp").alias("event_ts"),
        _str("sent").try_cast("timestamp").alias("sent_at"),
        _str("recv").try_cast("timestamp").alias("received_at"),
        _str("orig").try_cast("timestamp").alias("original_ts"),
    )


def _present(name: str) -> Column:
    return _t(name).isNotNull() & (_t(name) != "VOID")


@dataclass(frozen=True)
class TimeWindow:
    """Plausible event times: from `min_event_date` to the line's trusted arrival time
    (bronze.arrival) plus `max_future_hours` (bronze.min_event_date, bronze.max_future_hours)."""

    min_event_date: str = "1990-01-01"
    max_future_hours: float = 72.0

    def plausible(self, event_ts: Column, arrival: Column) -> Column:
        latest = arrival + F.make_dt_interval(
            F.lit(0), F.lit(0), F.lit(0), F.lit(float(self.max_future_hours) * 3600.0)
        )
        return (event_ts >= F.lit(self.min_event_date).cast("timestamp")) & (event_ts <= latest)


def with_quarantine_reason(
    df: DataFrame,
    max_line_chars: int,
    window: TimeWindow | None = None,
    ingested_at: datetime | None = None,
) -> DataFrame:
    """Add `reason` (null for loadable lines) and a human `detail`: one CASE WHEN, the
    first failing rule wins. `source_file` (the landing path) bounds the arrival time."""
    window = window or TimeWindow()
    ingested = F.lit(ingested_at).cast("timestamp") if ingested_at else F.current_timestamp()
    arrival = arrival_ts(F.col("received_at"), F.col("source_file"), ingested)
    ts_ok = window.plausible(F.col("event_ts"), arrival)
    etype = F.col("event_type")
    has_anon, has_user = _nonblank(F.col("anonymous_id")), _nonblank(F.col("user_id"))

    def not_object(name: str) -> Column:
        return _present(name) & ~_t(name).startswith("OBJECT")

    rules: list[tuple[Column, str, Column]] = [
        (F.col("raw_line").rlike(r"^\s*$"), "empty_line", F.lit("blank line")),
        (
            F.length("raw_line") > max_line_chars,
            "line_too_long",
            F.concat(F.lit("length "), F.length("raw_line").cast("string")),
        ),
        # Spark's text reader turns bytes that are not UTF-8 into U+FFFD: the line is
        # not what the producer sent, so it is kept aside rather than loaded altered.
        (
            F.col("raw_line").contains("\ufffd"),
            "invalid_utf8",
            F.lit("bytes that are not UTF-8 (shown as U+FFFD)"),
        ),
        (F.col(W).isNull(), "malformed_json", F.lit("not valid JSON (malformed or truncated)")),
        # The parser stops after the first complete value, so trailing content that
        # still parses (`{..}]`) shows only as an object line not ending in "}".
        (
            F.col(V).isNull()
            | (
                F.ltrim(F.col("raw_line")).startswith("{")
                & ~F.expr("trim(TRAILING ' \\t' FROM raw_line)").endswith("}")
            ),
            "multiple_json_values",
            F.lit("more than one JSON value, or content after it, on the line (none loaded)"),
        ),
        # Valid JSON text that starts with "{" is an object (cheaper than typing the root).
        (
            ~F.ltrim(F.col("raw_line")).startswith("{"),
            "not_an_object",
            F.lit("top-level value is not an object"),
        ),
        (~_present("mid"), "missing_message_id", F.lit("messageId absent or null")),
        (
            ~_nonblank(F.col("message_id")),
            "invalid_message_id",
            F.concat(F.lit("messageId is "), _t("mid")),
        ),
        (~_present("type"), "missing_type", F.lit("type absent or null")),
        (
            ~etype.isin(*MESSAGE_TYPES) | etype.isNull(),
            "invalid_type",
            F.concat(F.lit("type "), F.coalesce(etype, _t("type"))),
        ),
        (
            ~_present("ts") & ~_present("orig"),
            "missing_timestamp",
            F.lit("timestamp and originalTimestamp absent or null"),
        ),
        (
            ~ts_ok | F.col("event_ts").isNull(),
            "invalid_timestamp",
            F.concat(
                F.lit("timestamp "),
                F.coalesce(F.col("_ts_raw"), _t("ts")),
                F.when(
                    F.col("event_ts").isNotNull(),
                    F.concat(
                        F.lit(f" outside {window.min_event_date} .. arrival "),
                        arrival.cast("string"),
                        F.lit(f" + {window.max_future_hours:g}h"),
                    ),
                ).otherwise(F.lit("")),
            ),
        ),
        (
            ~_present("anon") & ~_present("user"),
            "missing_identity",
            F.lit("neither anonymousId nor userId"),
        ),
        (
            ~has_anon & ~has_user,
            "invalid_identity",
            F.lit("anonymousId/userId present but not non-empty strings"),
        ),
        (
            (etype == "track") & ~_nonblank(F.col("event")),
            "missing_event",
            F.lit("track message without an event name"),
        ),
        (
            (etype == "alias") & ~_nonblank(F.col("previous_id")),
            "missing_previous_id",
            F.lit("alias message without previousId"),
        ),
        (
            etype.isin("track", "page", "screen") & not_object("props"),
            "invalid_properties",
            F.concat(F.lit("properties is "), _t("props")),
        ),
        (
            (etype == "identify") & not_object("traits"),
            "invalid_traits",
            F.concat(F.lit("traits is "), _t("traits")),
        ),
    ]
    reason = F.when(F.coalesce(rules[0][0], F.lit(False)), F.lit(rules[0][1]))
    detail = F.when(F.coalesce(rules[0][0], F.lit(False)), rules[0][2])
    for cond, code, text in rules[1:]:
        hit = F.coalesce(cond, F.lit(False))
        reason = reason.when(hit, F.lit(code))
        detail = detail.when(hit, text)
    return df.withColumn("reason", reason).withColumn("detail", F.substring(detail, 1, 500))


def _pii_key(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def scrub_pattern(pii_fields: Sequence[str]) -> str:
    """Regex matching `"key": <scalar>` for every configured PII key (any depth)."""
    keys = sorted({_pii_key(p) for p in pii_fields})
    names = "|".join(k.replace(".", r"\.") for k in keys)
    return r'"(' + names + r')"\s*:\s*("(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+-]*|true|false)'


def with_pii_protected(
    df: DataFrame, pii_fields: Sequence[str], mode: str, key_hex: str
) -> DataFrame:
    """Encrypt (AES-GCM) or drop PII fields and null them out in `raw_line`.

    `pii` maps the field path to base64(iv || ciphertext || tag), readable with any
    AES-GCM implementation (e.g. `cryptography`'s AESGCM) given the key.
    """
    if not pii_fields:
        return df.withColumn("pii", F.create_map().cast("map<string,string>"))
    if mode == "encrypt":
        key = aes_key(key_hex)
        # one single-entry map per present field, concatenated (a higher-order function
        # such as map_filter cannot hold the key's subquery)
        empty = F.create_map().cast("map<string,string>")
        maps = []
        for path in pii_fields:
            value = F.when(F.col(V).isNotNull(), jstring(f"$.{path}"))
            entry = F.create_map(F.lit(path), F.base64(encrypt(value, key)))
            maps.append(F.when(value.isNotNull(), entry).otherwise(empty))
        pii = F.map_concat(*maps) if len(maps) > 1 else maps[0]
    else:
        pii = F.create_map().cast("map<string,string>")
    scrubbed = F.regexp_replace("raw_line", scrub_pattern(pii_fields), '"$1":null')
    return df.withColumn("pii", pii).withColumn("raw_line", scrubbed)


def with_sampling(df: DataFrame, keep_rates: Mapping[str, float]) -> DataFrame:
    """`sampling_weight` (1/rate) and `_sampled_out`, deterministic by message_id."""
    if not keep_rates:
        return df.withColumn("sampling_weight", F.lit(1.0)).withColumn("_sampled_out", F.lit(False))
    rate: Column = F.lit(1.0)
    for name, r in keep_rates.items():
        rate = F.when(F.col("event") == name, F.lit(float(r))).otherwise(rate)
    bucket = F.pmod(F.xxhash64(F.coalesce(F.col("message_id"), F.lit(""))), F.lit(1_000_000))
    keep = bucket < rate * 1_000_000
    return df.withColumn("sampling_weight", 1.0 / rate).withColumn(
        "_sampled_out", F.col("reason").isNull() & ~keep
    )


def with_outcome(df: DataFrame) -> DataFrame:
    """`_outcome`: bronze | quarantine | sampled_out."""
    return df.withColumn(
        "_outcome",
        F.when(F.col("reason").isNotNull(), F.lit("quarantine"))
        .when(F.col("_sampled_out"), F.lit("sampled_out"))
        .otherwise(F.lit("bronze")),
    )


def properties_variant() -> Column:
    """The line's `properties` object as VARIANT (null when absent)."""
    return F.try_variant_get(F.col(V), "$.properties", "variant").alias(PROPS)


def classify_lines(
    lines: DataFrame,
    *,
    max_line_chars: int,
    pii_fields: Sequence[str],
    pii_mode: str,
    key_hex: str,
    keep_rates: Mapping[str, float],
    window: TimeWindow | None = None,
    ingested_at: datetime | None = None,
) -> DataFrame:
    """The whole line -> outcome chain (parse, validate, protect PII, sample)."""
    return (
        lines.transform(with_envelope)
        .transform(lambda d: with_quarantine_reason(d, max_line_chars, window, ingested_at))
        .transform(lambda d: with_pii_protected(d, pii_fields, pii_mode, key_hex))
        .transform(lambda d: with_sampling(d, keep_rates))
        .transform(with_outcome)
    )
