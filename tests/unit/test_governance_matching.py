"""Erasure and subject export find a subject's raw lines by whole id values, never by
substring, and refuse ids that would match many people."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from pyspark.sql import SparkSession

from behavior_lake.contracts.bronze import BRONZE_QUARANTINE
from behavior_lake.governance.erasure import Subject, check_subject_id, predicate

KEY = "unit-test-key"


def _quarantine(spark: SparkSession, lines: list[str]):
    now = datetime(2026, 12, 1)
    rows = [
        (line, "malformed_json", None, None, None, None, f"f{i}", "b1", now, now.date())
        for i, line in enumerate(lines)
    ]
    return spark.createDataFrame(rows, BRONZE_QUARANTINE.schema)


def _matched(spark: SparkSession, raw_ids: set[str], lines: list[str]) -> list[int]:
    df = _quarantine(spark, lines)
    subj = Subject("r", raw_ids=raw_ids)
    cond = predicate("bronze.quarantine", df.columns, subj, KEY)
    return sorted(int(r["source_file"][1:]) for r in df.filter(cond).collect())


def test_quarantined_lines_match_whole_ids_only(spark: SparkSession) -> None:
    lines = [
        '{"userId": "42", "messageId": "m1", "timestamp": ',  # truncated: the subject
        '{"userId":"1422","properties":{"price":42}',  # other person, 42 inside
        '{"anonymousId": "a-42-b", "event": "Product Viewed"',
        '{"userId": "e", "messageId": "m2"',  # subject "e"
        '{"userId": "eve", "event": "Order Completed", "type": "track"',
        '{"previousId":"42","userId":"zed"',  # alias of the subject
        'not json, mentions "42" and e',
        json.dumps({"userId": 'q"uote\\E'})[:-1],  # regex and JSON escapes in an id
    ]
    assert _matched(spark, {"42"}, lines) == [0, 5]
    assert _matched(spark, {"e"}, lines) == [3]
    assert _matched(spark, {'q"uote\\E'}, lines) == [7]
    assert _matched(spark, {"nobody"}, lines) == []


@pytest.mark.parametrize("bad", ["", "  ", "null", "Undefined", "0", "anonymous", " 42"])
def test_broad_or_blank_ids_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="--user-id"):
        check_subject_id(bad, "--user-id")


def test_ordinary_ids_pass() -> None:
    for ok in ("42", "e", "user@example.com", "0042"):
        assert check_subject_id(ok, "--user-id") == ok
