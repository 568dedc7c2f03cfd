from __future__ import annotations

import base64
import json
from datetime import datetime

import pytest
from chispa import assert_df_equality
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from behavior_lake.bronze.parse import REASONS, classify_lines, scrub_pattern

KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
PII = ["context.ip", "traits.email", "traits.phone"]
TS = "2026-01-05T10:00:00.123Z"


def msg(**over) -> str:
    base = {
        "messageId": "m1",
        "type": "track",
        "event": "Product Viewed",
        "anonymousId": "a1",
        "timestamp": TS,
        "properties": {"product_id": "p1"},
        "context": {"ip": "203.0.113.9"},
    }
    for k, v in over.items():
        if v is ...:
            base.pop(k, None)
        else:
            base[k] = v
    return json.dumps(base, ensure_ascii=False)


CASES: list[tuple[str, str | None]] = [
    (msg(), None),
    (msg(type="page", event=..., properties={"path": "/"}), None),
    (msg(type="identify", event=..., userId="u1", traits={"email": "x@example.com"}), None),
    (msg(type="alias", event=..., userId="u1", previousId="a1"), None),
    (msg(properties={"name": "Ünïcødé ✓ 🚀 日本語"}), None),
    (msg(properties={"product_id": "p", "blob": "x" * 100}), None),
    (msg(properties={"product_id": "p", "price": "12.50"}), None),  # drift, still loads
    (msg(properties={"product_id": {"nested": ["wrong", {"deep": 1}]}}), None),
    ("", "empty_line"),
    ("   \t ", "empty_line"),
    (msg(properties={"blob": "x" * 600}), "line_too_long"),
    (msg(properties={"product_id": "caf\ufffd"}), "invalid_utf8"),
    ('{"messageId": "m1", "type": "track"', "malformed_json"),
    (msg()[:40], "malformed_json"),
    ("not json at all", "malformed_json"),
    (msg() + msg(messageId="m2"), "malformed_json"),  # not one value: nothing loaded
    (msg() + ", " + msg(messageId="m2"), "multiple_json_values"),
    (msg() + " garbage", "malformed_json"),
    (msg() + "]", "multiple_json_values"),
    (msg() + "   ", None),
    ("[1, 2, 3]", "not_an_object"),
    ('"just a string"', "not_an_object"),
    (msg(messageId=...), "missing_message_id"),
    (msg(messageId=None), "missing_message_id"),
    (msg(messageId=12345), "invalid_message_id"),
    (msg(messageId=""), "invalid_message_id"),
    (msg(type=...), "missing_type"),
    (msg(type="purchase"), "invalid_type"),
    (msg(type=7), "invalid_type"),
    (msg(timestamp=...), "missing_timestamp"),
    (msg(timestamp=1767607200), "invalid_timestamp"),
    (msg(timestamp="yesterday"), "invalid_timestamp"),
    (msg(timestamp="1969-12-31T23:59:59Z"), "invalid_timestamp"),
    (msg(anonymousId=...), "missing_identity"),
    (msg(anonymousId=123), "invalid_identity"),
    (msg(anonymousId=""), "invalid_identity"),
    (msg(event=...), "missing_event"),
    (msg(event=""), "missing_event"),
    (msg(type="alias", event=..., userId="u1"), "missing_previous_id"),
    (msg(properties="n/a"), "invalid_properties"),
    (msg(type="identify", event=..., traits=[1, 2]), "invalid_traits"),
]


def classify(spark: SparkSession, lines: list[str], **kw):
    df = spark.createDataFrame(
        [(i, line, "f.jsonl") for i, line in enumerate(lines)],
        "line_no int, raw_line string, source_file string",
    )
    args = dict(max_line_chars=500, pii_fields=PII, pii_mode="encrypt", key_hex=KEY, keep_rates={})
    args.update(kw)
    return classify_lines(df, **args)


def test_every_fault_gets_its_reason(spark: SparkSession) -> None:
    got = classify(spark, [c[0] for c in CASES]).select("line_no", "reason")
    expected = spark.createDataFrame(
        list(enumerate(c[1] for c in CASES)), "line_no int, reason string"
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    assert {c[1] for c in CASES if c[1]} <= set(REASONS)


def test_envelope_is_typed_and_utc(spark: SparkSession) -> None:
    lines = [
        msg(timestamp="2026-01-05T12:00:00+02:00", receivedAt="2026-01-05T10:00:01Z"),
        msg(type="screen", event=..., properties={"name": "Home"}),
    ]
    rows = classify(spark, lines).orderBy("line_no").collect()
    assert rows[0]["event_ts"] == datetime(2026, 1, 5, 10, 0, 0)
    assert rows[0]["received_at"] == datetime(2026, 1, 5, 10, 0, 1)
    assert rows[0]["event"] == "Product Viewed"
    assert rows[1]["event"] == "Screen Viewed"
    assert rows[1]["_outcome"] == "bronze"


def test_pii_is_encrypted_and_removed_from_the_line(spark: SparkSession) -> None:
    line = msg(
        type="identify",
        event=...,
        userId="u1",
        traits={"email": "jane@example.com", "phone": "+15550001", "plan": "pro"},
    )
    row = classify(spark, [line]).first()
    assert "203.0.113.9" not in row["raw_line"] and "jane@example.com" not in row["raw_line"]
    assert json.loads(row["raw_line"])["traits"] == {"email": None, "phone": None, "plan": "pro"}
    aes = AESGCM(bytes.fromhex(KEY))
    decrypted = {}
    for path, blob in row["pii"].items():
        raw = base64.b64decode(blob)
        decrypted[path] = aes.decrypt(raw[:12], raw[12:], None).decode()
    assert decrypted == {
        "context.ip": "203.0.113.9",
        "traits.email": "jane@example.com",
        "traits.phone": "+15550001",
    }


def test_pii_drop_mode_keeps_nothing(spark: SparkSession) -> None:
    row = classify(spark, [msg()], pii_mode="drop").first()
    assert row["pii"] == {}
    assert json.loads(row["raw_line"])["context"]["ip"] is None


def test_pii_scrubbed_from_quarantined_lines_too(spark: SparkSession) -> None:
    row = classify(spark, [msg(messageId=...)]).first()
    assert row["reason"] == "missing_message_id"
    assert "203.0.113.9" not in row["raw_line"]


def test_scrub_pattern_handles_escapes() -> None:
    import re

    text = '{"email":"a\\"b@x.com","ip":"1.2.3.4","other":"email"}'
    out = re.sub(scrub_pattern(PII), r'"\1":null', text)
    assert json.loads(out) == {"email": None, "ip": None, "other": "email"}


def test_sampling_is_deterministic_and_weighted(spark: SparkSession) -> None:
    lines = [
        msg(messageId=f"m{i}", type="page", event=..., properties={"path": "/"}) for i in range(400)
    ] + [msg(messageId=f"t{i}") for i in range(50)]
    rates = {"Page Viewed": 0.25}
    a = classify(spark, lines, keep_rates=rates)
    b = classify(spark, lines, keep_rates=rates)
    assert_df_equality(
        a.select("line_no", "_outcome"), b.select("line_no", "_outcome"), ignore_row_order=True
    )
    stats = {
        (r["event"], r["_outcome"]): (r["n"], r["w"])
        for r in a.groupBy("event", "_outcome")
        .agg(F.count("*").alias("n"), F.max("sampling_weight").alias("w"))
        .collect()
    }
    kept, weight = stats[("Page Viewed", "bronze")]
    assert weight == pytest.approx(4.0)
    assert 60 <= kept <= 140  # ~100 expected
    assert stats[("Product Viewed", "bronze")] == (50, 1.0)
