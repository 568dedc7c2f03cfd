"""Arrival time, lateness, backfills and clock skew (docs/arrival-time.md) on hand-made
bronze rows: the landing folder's hour stands in for a missing receivedAt, a client's
receivedAt never counts later than the folder or the ingestion, and the Segment skew
correction applies where sentAt and originalTimestamp are known."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from chispa import assert_column_equality
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from behavior_lake.bronze.arrival import arrival_ts, landing_hour_end
from behavior_lake.bronze.parse import TimeWindow, classify_lines
from tests.unit.test_silver_rules import bronze_row, conform

T = datetime(2025, 3, 10, 14, 20, tzinfo=UTC)  # event time of most rows below
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)  # "today": ingestion of a backfill


def landed(row: tuple, *, folder: datetime | None, received: bool, ingested: datetime) -> tuple:
    """A bronze row as ingested at `ingested` from <folder date>/<HH>/ (None: a path
    outside the layout), with or without its receivedAt."""
    r = list(row)
    r[8] = r[8] if received else None
    r[12] = f"{folder:%Y-%m-%d/%H}/events.jsonl" if folder else "events.jsonl"
    r[14], r[15] = ingested, ingested.date()
    return tuple(r)


def test_landing_hour_end(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [
            ("2025-03-10/14/a.jsonl", datetime(2025, 3, 10, 15, 0)),
            ("2025-03-10/23/b.jsonl.gz", datetime(2025, 3, 11, 0, 0)),  # midnight rollover
            ("2024-12-31/23/c.jsonl", datetime(2025, 1, 1, 0, 0)),  # year rollover
            ("2025-03-10/24/d.jsonl", None),
            ("misc/e.jsonl", None),
            (None, None),
        ],
        "source_file string, expected timestamp",
    )
    assert_column_equality(
        df.withColumn("got", landing_hour_end(F.col("source_file"))), "got", "expected"
    )


def test_arrival_never_later_than_folder_or_ingestion(spark: SparkSession) -> None:
    rows = [  # received_at, source_file, ingested_at, expected
        (T, "2025-03-10/14/a.jsonl", NOW, T),  # receivedAt trusted
        (None, "2025-03-10/14/a.jsonl", NOW, datetime(2025, 3, 10, 15, 0)),  # folder hour
        (None, "misc.jsonl", NOW, NOW),  # outside the layout: the ingestion
        (datetime(2099, 1, 1), "2025-03-10/14/a.jsonl", NOW, datetime(2025, 3, 10, 15, 0)),
        (datetime(2099, 1, 1), "2099-01-01/00/a.jsonl", NOW, NOW),  # forged folder too
    ]
    df = spark.createDataFrame(
        rows, "received_at timestamp, source_file string, ingested_at timestamp, expected timestamp"
    ).withColumn(
        "got", arrival_ts(F.col("received_at"), F.col("source_file"), F.col("ingested_at"))
    )
    assert_column_equality(df, "got", "expected")


def _outcome(df) -> dict[str, tuple]:
    return {
        r["message_id"]: (r["_status"], r["reason"], r["arrival_source"], r["event_ts"])
        for r in df.filter("_copy = 1").collect()
    }


def test_backfill_equals_on_time_load_with_and_without_received_at(spark: SparkSession) -> None:
    """The same landing set dated a year back, ingested a year later, with and without
    receivedAt, has the outcome of the on-time load; before the fix (arrival = ingestion)
    every event was too_late."""
    base = [
        bronze_row("a", ts=T, received=T + timedelta(seconds=2)),
        bronze_row("b", ts=T + timedelta(minutes=3), received=T + timedelta(minutes=3, seconds=1)),
        bronze_row("late", ts=T - timedelta(days=5), received=T + timedelta(seconds=3)),
        bronze_row("future", ts=T + timedelta(hours=6), received=T + timedelta(seconds=4)),
    ]
    folder = datetime(2025, 3, 10, 14, tzinfo=UTC)
    on_time = _outcome(
        conform(spark, [landed(r, folder=folder, received=True, ingested=T + timedelta(minutes=50))
                        for r in base])
    )  # fmt: skip
    for received in (True, False):
        later = _outcome(
            conform(
                spark, [landed(r, folder=folder, received=received, ingested=NOW) for r in base]
            )
        )
        statuses = {k: v[:2] for k, v in later.items()}
        assert statuses == {k: v[:2] for k, v in on_time.items()}, received
        assert statuses["a"] == ("silver", None) and statuses["late"] == ("reject", "too_late")
        assert {v[2] for v in later.values()} == {"received_at" if received else "landing_path"}
        if received:
            assert later == on_time
        else:  # corrected to the end of the arrival hour, the latest it can have arrived
            assert later["future"][3] == datetime(2025, 3, 10, 15, 0)
    # positive control: the same rows with no folder and no receivedAt are all "late"
    lost = _outcome(conform(spark, [landed(r, folder=None, received=False, ingested=NOW)
                                    for r in base]))  # fmt: skip
    assert {v[:2] for v in lost.values()} == {("reject", "too_late")}


def test_forged_received_at_cannot_move_arrival(spark: SparkSession) -> None:
    forged = datetime(2099, 6, 1, tzinfo=UTC)
    folder = datetime(2026, 11, 30, 8, tzinfo=UTC)
    row = landed(
        bronze_row("f", ts=forged, received=forged),
        folder=folder,
        received=True,
        ingested=NOW,
    )
    got = conform(spark, [row]).first()
    assert got["arrival_ts"] == datetime(2026, 11, 30, 9, 0)
    assert got["is_ts_corrected"] and got["event_ts"] == datetime(2026, 11, 30, 9, 0)


def test_clock_skew_correction(spark: SparkSession) -> None:
    """timestamp = receivedAt - (sentAt - originalTimestamp): a device 2 h ahead."""
    received = T + timedelta(seconds=30)
    row = list(bronze_row("s", ts=T + timedelta(hours=2), received=received))
    msg = json.loads(row[9])
    msg["originalTimestamp"] = (T + timedelta(hours=2)).isoformat()
    row[7] = T + timedelta(hours=2, seconds=29)  # sentAt on the device clock
    row[9] = json.dumps(msg)
    plain = bronze_row("p", ts=T, received=received)  # no originalTimestamp: unchanged
    got = {r["message_id"]: r for r in conform(spark, [tuple(row), plain]).collect()}
    assert got["s"]["event_ts"] == datetime(2025, 3, 10, 14, 20, 1)
    assert abs(got["s"]["clock_skew_seconds"] - (7200 - 1)) < 1e-6
    assert not got["s"]["is_ts_corrected"]  # skew correction is not the future fix
    assert got["p"]["event_ts"] == datetime(2025, 3, 10, 14, 20)
    assert got["p"]["clock_skew_seconds"] is None


def test_plausibility_window_is_config(spark: SparkSession) -> None:
    def line(ts: str, received: str | None = None) -> str:
        m = {"messageId": ts, "type": "track", "event": "Product Viewed", "anonymousId": "a",
             "timestamp": ts, "properties": {"product_id": "p"}}  # fmt: skip
        if received:
            m["receivedAt"] = received
        return json.dumps(m)

    lines = [
        line("1997-06-01T10:00:00Z"),  # real history: loads by default
        line("1970-01-01T00:00:00Z"),  # defaulted device clock
        line("1989-12-31T23:59:59Z"),
        line("2026-11-30T10:30:00Z"),  # within its arrival hour
        line("2026-12-03T10:00:00Z"),  # 2 days after arrival: < 72 h, silver corrects it
        line("2099-01-01T00:00:00Z", "2099-01-01T00:00:00Z"),  # forged, receivedAt too
    ]
    df = spark.createDataFrame(
        [(i, x, "2026-11-30/10/e.jsonl") for i, x in enumerate(lines)],
        "line_no int, raw_line string, source_file string",
    )
    kw = dict(max_line_chars=10_000, pii_fields=[], pii_mode="drop", key_hex="00" * 16,
              keep_rates={}, ingested_at=NOW)  # fmt: skip
    got = [r["reason"] for r in classify_lines(df, **kw).orderBy("line_no").collect()]
    bad = "invalid_timestamp"
    assert got == [None, bad, bad, None, None, bad]
    narrow = TimeWindow(min_event_date="2000-01-01", max_future_hours=1)
    got = [
        r["reason"] for r in classify_lines(df, window=narrow, **kw).orderBy("line_no").collect()
    ]
    assert got == [bad, bad, bad, None, bad, bad]
