"""Silver rules on hand-made bronze rows: pseudonyms, stitching, validation, consent,
dedup, time sanity, bots, sessions."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import random
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from behavior_lake.config import SilverSettings
from behavior_lake.contracts.bronze import BRONZE_EVENTS
from behavior_lake.contracts.taxonomy import load_taxonomy
from behavior_lake.privacy.pseudonym import anon_hash, hmac_sha256_hex, user_person_id
from behavior_lake.silver.conform import _consent_signal
from behavior_lake.silver.conform import conform as conform_rows
from behavior_lake.silver.identity import identity_links, with_person
from behavior_lake.silver.sessions import (
    session_spans,
    sessions,
    sessions_from_events,
    with_session_id,
)
from tests.conftest import CONF

KEY = "unit-test-key"
T0 = datetime(2026, 1, 5, 23, 40, tzinfo=UTC)
TAX = load_taxonomy(CONF)


def py_pid(prefix: str, raw: str, key: str = KEY) -> str:
    return hmac.new(key.encode(), (prefix + raw).encode(), hashlib.sha256).hexdigest()[:32]


def bronze_row(
    mid: str,
    *,
    ts: datetime = T0,
    anon: str | None = "a1",
    user: str | None = None,
    mtype: str = "track",
    event: str | None = "Product Viewed",
    props: dict | None = None,
    received: datetime | None = None,
    analytics: bool | None = True,
    ua: str = "Mozilla/5.0",
    previous: str | None = None,
    batch: str = "b1",
    source: str = "f1",
) -> tuple:
    props = {"product_id": "p1"} if props is None and mtype == "track" else props
    msg = {
        "messageId": mid,
        "type": mtype,
        "timestamp": ts.isoformat(),
        "context": {
            "userAgent": ua,
            "library": {"name": "analytics.js"},
            "locale": "en-US",
            "ip": None,
        },
    }
    if analytics is not None:
        msg["context"]["consent"] = {"categoryPreferences": {"Analytics": analytics}}
    if props is not None:
        msg["properties"] = props
    received = received or ts + timedelta(seconds=1)
    name = {"page": "Page Viewed", "screen": "Screen Viewed"}.get(mtype, event)
    return (
        mid,
        mtype,
        name if mtype in ("track", "page", "screen") else None,
        anon,
        user,
        previous,
        ts,
        ts,
        received,
        json.dumps(msg),
        {},
        1.0,
        source,
        batch,
        received,
        received.date(),
    )


def bronze(spark: SparkSession, rows: list[tuple]):
    return spark.createDataFrame(rows, BRONZE_EVENTS.schema)


def conform(spark: SparkSession, rows: list[tuple], s: SilverSettings | None = None):
    s = s or SilverSettings()
    b = bronze(spark, rows)
    links = identity_links(b, s.max_ids_per_person)
    resolved = with_person(b, links, KEY)
    # several assertions read the same small result
    return conform_rows(resolved, TAX, s, s.kept_context_fields).cache()


def test_hmac_matches_python(spark: SparkSession) -> None:
    for key in (KEY, "k" * 100):  # long keys are hashed first
        df = spark.createDataFrame([("hello",), ("ünïcode",)], "m string")
        got = [r[0] for r in df.select(hmac_sha256_hex(F.col("m"), key)).collect()]
        want = [
            hmac.new(key.encode(), m.encode(), hashlib.sha256).hexdigest()
            for m in ("hello", "ünïcode")
        ]
        assert got == want
    row = (
        spark.createDataFrame([("u9", "a9")], "u string, a string")
        .select(user_person_id(F.col("u"), KEY), anon_hash(F.col("a"), KEY))
        .first()
    )
    assert tuple(row) == (py_pid("user:", "u9"), py_pid("anon:", "a9"))


def test_stitching_attributes_devices_and_ignores_junk(spark: SparkSession) -> None:
    rows = [
        bronze_row("m1", anon="dev1"),  # before login
        bronze_row(
            "m2",
            anon="dev1",
            user="alice",
            mtype="identify",
            event=None,
            ts=T0 + timedelta(minutes=1),
        ),
        bronze_row("m3", anon="dev2", user="alice", ts=T0 + timedelta(minutes=2)),  # 2nd device
        bronze_row("m4", anon="null", user="alice", ts=T0 + timedelta(minutes=3)),  # junk id
        bronze_row("m5", anon="null", user="bob", ts=T0 + timedelta(minutes=4)),
        bronze_row("m6", anon="null", ts=T0 + timedelta(minutes=5)),  # junk only
        bronze_row("m7", anon="dev1", user="carol", ts=T0 + timedelta(minutes=6)),  # shared later
        bronze_row("m8", anon="dev3", ts=T0 + timedelta(minutes=7)),  # never identified
        bronze_row(
            "m9",
            anon="dev4",
            user="dave",
            mtype="alias",
            event=None,
            previous="dev5",
            ts=T0 + timedelta(minutes=8),
        ),
        bronze_row("m10", anon="dev5", ts=T0 + timedelta(minutes=9)),
    ]
    b = bronze(spark, rows)
    got = {
        r["message_id"]: r["person_id"]
        for r in with_person(b, identity_links(b, 50), KEY).collect()
    }
    alice, bob = py_pid("user:", "alice"), py_pid("user:", "bob")
    assert got["m1"] == got["m2"] == got["m3"] == got["m4"] == alice
    assert got["m5"] == bob  # "null" did not merge alice and bob
    assert got["m6"] is None  # unattributable
    assert got["m7"] == py_pid("user:", "carol")  # explicit userId wins on the event
    assert got["m8"] == py_pid("anon:", "dev3")
    assert got["m10"] == py_pid("user:", "dave")  # alias: previousId -> userId


def test_cap_on_ids_per_person(spark: SparkSession) -> None:
    rows = [
        bronze_row(f"m{i}", anon=f"farm{i}", user="kiosk", ts=T0 + timedelta(seconds=i))
        for i in range(5)
    ]
    links = identity_links(bronze(spark, rows), max_ids_per_person=3)
    assert sorted((r["anonymous_id"], r["capped"]) for r in links.collect()) == [
        ("farm0", False),
        ("farm1", False),
        ("farm2", False),
        ("farm3", True),
        ("farm4", True),
    ]


def statuses(df) -> dict[str, tuple[str, str | None]]:
    return {
        r["message_id"]: (r["_status"], r["reason"])
        for r in df.select("message_id", "_status", "reason", "_copy").collect()
        if r["_copy"] == 1
    }


def test_validation_time_bots_and_dedup(spark: SparkSession) -> None:
    late = T0 - timedelta(days=5)
    rows = [
        bronze_row("ok"),
        bronze_row("dup", received=T0 + timedelta(seconds=5), source="f1"),
        bronze_row("dup", received=T0 + timedelta(hours=3), source="f2", batch="b2"),
        bronze_row("dup_far", received=T0 + timedelta(seconds=5)),
        bronze_row("dup_far", received=T0 + timedelta(days=9), batch="b3"),
        bronze_row("late", ts=late, received=T0),
        bronze_row("future", ts=T0 + timedelta(hours=5), received=T0),
        bronze_row("unknown", event="Wishlist Shared"),
        bronze_row("noreq", props={"price": 3}),
        bronze_row("badtype", props={"product_id": "p", "price": "3.50"}),
        bronze_row("norev", event="Order Completed", props={"order_id": "o", "currency": "EUR"}),
        bronze_row(
            "badrev",
            event="Order Completed",
            props={"order_id": "o", "currency": "EUR", "revenue": "12"},
        ),
        bronze_row(
            "okrev",
            event="Order Completed",
            props={"order_id": "o", "currency": "EUR", "revenue": 12},
        ),
        bronze_row("intnum", props={"product_id": "p", "price": 3}),
        bronze_row("bot", anon="b1", ua="Mozilla/5.0 (compatible; Googlebot/2.1)"),
        bronze_row("junk", anon="undefined"),
    ]
    df = conform(spark, rows)
    got = statuses(df)
    assert got["ok"] == ("silver", None)
    assert got["dup"] == ("silver", None)
    assert got["late"] == ("reject", "too_late")
    assert got["future"] == ("silver", None)
    assert got["unknown"] == ("reject", "unknown_event")
    # taxonomy policy: flag by default (kept, finding listed), reject where declared
    assert got["noreq"] == ("silver", None)
    assert got["badtype"] == ("silver", None)
    assert got["norev"] == ("reject", "missing_required_property")
    assert got["badrev"] == ("reject", "invalid_property_type")
    assert got["okrev"] == ("silver", None)
    dq = {r["message_id"]: r["dq_issues"] for r in df.filter("_copy = 1").collect()}
    assert dq["noreq"] == ["missing_required_property:product_id"]
    assert dq["badtype"] == ["invalid_property_type:price"]
    assert dq["ok"] == [] and dq["okrev"] == [] and dq["intnum"] == []
    assert df.filter("message_id = 'badtype'").first()["properties"]["price"] is None
    assert got["intnum"] == ("silver", None)
    assert got["bot"] == ("reject", "bot_user_agent")
    assert got["junk"] == ("reject", "unattributable")
    copies = {
        (r["message_id"], r["_copy"]): (r["_status"], r["reason"], r["source_file"])
        for r in df.collect()
    }
    assert copies[("dup", 1)][2] == "f1" and copies[("dup", 2)][0] == "duplicate"
    assert copies[("dup_far", 2)][:2] == ("reject", "duplicate_beyond_lookback")
    fut = df.filter("message_id = 'future'").first()
    assert fut["is_ts_corrected"] and fut["event_ts"] == datetime(2026, 1, 5, 23, 40, 0)

    strict = conform(spark, rows, replace(SilverSettings(), future_timestamp_policy="reject"))
    assert statuses(strict)["future"] == ("reject", "future_timestamp")


def test_rate_ceiling_rejects_runaway_hour(spark: SparkSession) -> None:
    s = replace(SilverSettings(), bots=replace(SilverSettings().bots, max_events_per_hour=5))
    rows = [bronze_row(f"r{i}", anon="spin", ts=T0 + timedelta(seconds=i)) for i in range(6)]
    rows += [bronze_row("calm", anon="calm")]
    got = statuses(conform(spark, rows, s))
    assert {got[f"r{i}"] for i in range(6)} == {("reject", "bot_rate_limit")}
    assert got["calm"] == ("silver", None)


def test_consent_withdrawal_applies_from_its_time(spark: SparkSession) -> None:
    rows = [
        bronze_row("c1", analytics=None),  # no signal yet
        bronze_row("c2", ts=T0 + timedelta(minutes=1), analytics=True),
        bronze_row("c3", ts=T0 + timedelta(minutes=2), analytics=None),  # carries forward
        bronze_row("c4", ts=T0 + timedelta(minutes=3), analytics=False),  # withdrawal
        bronze_row("c5", ts=T0 + timedelta(minutes=4), analytics=None),
        bronze_row("c6", ts=T0 + timedelta(minutes=5), analytics=True),  # granted again
    ]
    got = {k: v[0] for k, v in statuses(conform(spark, rows)).items()}
    assert got == {
        "c1": "consent_dropped",
        "c2": "silver",
        "c3": "silver",
        "c4": "consent_dropped",
        "c5": "consent_dropped",
        "c6": "silver",
    }
    granted = conform(spark, rows[:1], replace(SilverSettings(), consent_when_unknown="grant"))
    assert statuses(granted)["c1"][0] == "silver"


def test_consent_signal_is_the_boolean_under_context_else_traits(spark: SparkSession) -> None:
    def at(where: str, value: object) -> dict:
        return {where: {"consent": {"categoryPreferences": {"Analytics": value}}}}

    lines = {
        "bool": (at("context", False), False),
        "string is no signal": (at("context", "true"), None),
        "number falls back to traits": ({**at("context", 1), **at("traits", True)}, True),
        "null falls back to traits": ({**at("context", None), **at("traits", False)}, False),
        "context wins": ({**at("context", True), **at("traits", False)}, True),
        "other case": (
            {"context": {"consent": {"categoryPreferences": {"analytics": True}}}},
            None,
        ),
        "context not an object": ({"context": [1], **at("traits", True)}, True),
        "no consent": ({"properties": {"x": {"y": [1, {"z": 2}]}}}, None),
    }
    rows = [(k, json.dumps(v)) for k, (v, _) in lines.items()]
    rows.append(
        ("escaped key", '{"context":{"consent":{"categoryPreferences":{"An\\u0061lytics":true}}}}')
    )
    rows.append(("not an object", "[1]"))
    df = spark.createDataFrame(rows, "case string, raw_line string")
    got = {
        r["case"]: r["signal"]
        for r in df.select("case", _consent_signal(F.col("raw_line")).alias("signal")).collect()
    }
    want = {k: expected for k, (_, expected) in lines.items()}
    assert got == {**want, "escaped key": True, "not an object": None}


def test_typed_properties_and_minimized_context(spark: SparkSession) -> None:
    row = conform(
        spark,
        [
            bronze_row(
                "t",
                event="Order Completed",
                props={
                    "order_id": "o1",
                    "revenue": 19.99,
                    "currency": "EUR",
                    "gift": True,
                    "note": {"to": "Ana", "tags": ["a", 1]},
                    "n": 2.5,
                },
            )
        ],
    ).first()
    assert row["properties"]["order_id"] == "o1"
    assert float(row["revenue"]) == pytest.approx(19.99)
    # undeclared properties: scalars as their text, objects and arrays as JSON
    assert row["properties_extra"] == {
        "gift": "true",
        "n": "2.5",
        "note": '{"tags":["a",1],"to":"Ana"}',
    }
    assert row["event_name"] == "order_completed" and row["category"] == "purchase"
    assert row["platform"] == "web"
    assert row["context"] == {"locale": "en-US", "library.name": "analytics.js"}


def sessions_input(spark: SparkSession, stamps: list[tuple[str, datetime]]):
    rows = [
        (f"m{i}", p, ts, "page", "page_viewed", f"/p{i}", None, "web")
        for i, (p, ts) in enumerate(stamps)
    ]
    return spark.createDataFrame(
        rows,
        "message_id string, person_id string, event_ts timestamp, event_type string, "
        "event_name string, page_path string, revenue decimal(18,2), platform string",
    )


def test_sessions_timeout_midnight_split_and_determinism(spark: SparkSession) -> None:
    t = datetime(2026, 1, 5, 23, 50, tzinfo=UTC)
    stamps = [
        ("p", t),
        ("p", t + timedelta(minutes=20)),  # crosses midnight: same
        ("p", t + timedelta(minutes=51)),  # 31 min gap: new session
        ("q", t),
        ("q", t + timedelta(minutes=30)),
    ]  # exactly 30 min: same
    stamps += [("r", t + timedelta(minutes=25 * k)) for k in range(70)]  # 28.75 h run
    ev = sessions_input(spark, stamps).transform(lambda d: with_session_id(d, 30, 24))
    sess = sessions_from_events(ev, 10).orderBy("person_id", "session_start_ts").collect()
    by_person: dict[str, list] = {}
    for s in sess:
        by_person.setdefault(s["person_id"], []).append(s)
    assert [s["event_count"] for s in by_person["p"]] == [2, 1]
    assert by_person["p"][0]["session_date"].isoformat() == "2026-01-05"  # dated by start
    assert by_person["p"][0]["session_end_ts"].date().isoformat() == "2026-01-06"
    assert [s["event_count"] for s in by_person["q"]] == [2]
    r = by_person["r"]
    assert len(r) == 2 and all(s["is_split"] for s in r)
    assert (r[0]["session_end_ts"] - r[0]["session_start_ts"]) < timedelta(hours=24)
    assert by_person["p"][0]["entry_page"] == "/p0" and by_person["p"][0]["exit_page"] == "/p1"
    assert by_person["p"][1]["is_bounce"] and not by_person["p"][0]["is_bounce"]
    again = sessions_input(spark, list(reversed(stamps))).transform(
        lambda d: with_session_id(d, 30, 24)
    )
    ids_a = {(r["person_id"], r["event_ts"]): r["session_id"] for r in ev.collect()}
    ids_b = {(r["person_id"], r["event_ts"]): r["session_id"] for r in again.collect()}
    assert ids_a == ids_b


def test_sessions_ignore_local_dst_jumps(spark: SparkSession) -> None:
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    # 01:59 CET and 03:01 CEST on the spring-forward night are 2 minutes apart.
    a = datetime(2026, 3, 29, 1, 59, tzinfo=berlin)
    b = datetime(2026, 3, 29, 3, 1, tzinfo=berlin)
    assert (b - a) == timedelta(hours=1, minutes=2)  # naive wall-clock view
    ev = sessions_input(spark, [("p", a.astimezone(UTC)), ("p", b.astimezone(UTC))])
    sess = sessions_from_events(ev.transform(lambda d: with_session_id(d, 30, 24)), 10).collect()
    assert len(sess) == 1 and sess[0]["duration_s"] == 120.0


def test_sessions_from_narrowed_events_match_whole_events(spark: SparkSession) -> None:
    """`sessions` (narrowed facts shuffled as timeout-wide buckets) gives the rows
    and ids of the per-event path the job uses (`with_session_id` on whole events): ties
    broken by message_id, pages, conversions, revenue, platform, a run cut in slices."""
    t = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    rows = [  # message_id, person, ts, type, name, page, revenue, platform
        ("m2", "p", t, "track", "product_viewed", None, None, "ios"),
        ("m1", "p", t, "page", "page_viewed", "/a", None, "web"),  # same ts, m1 first
        ("m3", "p", t + timedelta(minutes=5), "track", "order_completed", None, "10.50", "web"),
        ("m4", "p", t + timedelta(minutes=6), "screen", "screen_viewed", "/b", None, "ios"),
        ("m5", "p", t + timedelta(minutes=7), "track", "order_completed", None, "2.25", "web"),
        ("m6", "p", t + timedelta(minutes=60), "track", "product_viewed", None, None, "ios"),
    ]
    # a 28.75 h run of another person: cut into two slices (is_split, one id per slice)
    rows += [
        (
            f"r{k:02d}",
            "r",
            t + timedelta(minutes=25 * k),
            "page",
            "page_viewed",
            f"/r{k}",
            None,
            "web",
        )
        for k in range(70)
    ]
    ev = spark.createDataFrame(
        [(*r[:6], None if r[6] is None else Decimal(r[6]), r[7]) for r in rows],
        "message_id string, person_id string, event_ts timestamp, event_type string, "
        "event_name string, page_path string, revenue decimal(18,2), platform string",
    )
    got = sessions(ev, 30, 24, 10).orderBy("person_id", "session_start_ts").collect()
    whole = sessions_from_events(ev.transform(lambda d: with_session_id(d, 30, 24)), 10)
    assert sorted(got) == sorted(whole.collect())
    first, second, *sliced = got
    assert [(r["person_id"], r["is_split"], r["event_count"]) for r in sliced] == [
        ("r", True, 58),  # 0, 25, ..., 1425 min: the first 24 h
        ("r", True, 12),
    ]
    assert (first["event_count"], first["page_count"]) == (5, 2)
    assert (first["entry_page"], first["exit_page"], first["platform"]) == ("/a", "/b", "web")
    assert first["has_conversion"] and first["revenue"] == Decimal("12.75")
    end = (t + timedelta(minutes=7)).replace(tzinfo=None)  # collected in the UTC session
    assert first["session_end_ts"] == end and not first["is_split"]
    assert second["is_bounce"] and not second["has_conversion"]
    assert (second["entry_page"], second["exit_page"], second["platform"]) == (None, None, "ios")
    assert second["revenue"] == Decimal("0.00") and second["page_count"] == 0
    ids = {r["session_id"] for r in with_session_id(ev, 30, 24).collect()}
    assert {r["session_id"] for r in got} == ids


def random_events(spark: SparkSession, seed: int):
    """Events of 8 persons with ties, gaps around the timeout, long pauses and day-long
    dense runs (20-29 min apart) starting at odd seconds, so slice boundaries cut
    30-minute buckets; pages, conversions and platforms vary."""
    rng = random.Random(seed)
    rows, t0 = [], datetime(2026, 1, 5, 7, 13, 21, 250_000, tzinfo=UTC)
    for person in range(8):
        ts = t0 + timedelta(seconds=rng.randrange(0, 7200), microseconds=rng.randrange(10**6))
        dense = person % 3 == 0
        for _ in range(rng.randrange(40, 120)):
            roll = rng.random()
            if dense and roll < 0.9:
                gap = rng.uniform(1200, 1740)
            elif roll < 0.05:
                gap = 0.0  # a tie: message_id decides
            elif roll < 0.15:
                gap = rng.choice([1799.999999, 1800.0, 1800.000001, 1801.0])
            elif roll < 0.25:
                gap = rng.uniform(7200, 30000)
            else:
                gap = rng.uniform(0.5, 600)
            ts += timedelta(seconds=gap)
            kind = rng.choice(["page", "screen", "track", "order"])
            page = f"/{rng.randrange(5)}" if kind in ("page", "screen") else None
            name = "order_completed" if kind == "order" else f"{kind}_viewed"
            revenue = Decimal(rng.randrange(1, 9999)) / 100 if kind == "order" else None
            platform = rng.choice(["web", "ios", None])
            etype = "track" if kind == "order" else kind
            rows.append((ts, f"p{person}", etype, name, page, revenue, platform))
    rng.shuffle(rows)
    return spark.createDataFrame(
        [(f"m{i:05d}", r[1], r[0], *r[2:]) for i, r in enumerate(rows)],
        "message_id string, person_id string, event_ts timestamp, event_type string, "
        "event_name string, page_path string, revenue decimal(18,2), platform string",
    )


@pytest.mark.parametrize(("timeout", "max_hours"), [(30, 1), (30, 24), (90, 1)])
def test_sessions_from_buckets_match_per_event_windows(
    spark: SparkSession, timeout: int, max_hours: int
) -> None:
    """`sessions` / `session_spans` (events pre-aggregated into timeout-wide buckets,
    cut buckets regrouped per slice) give exactly the rows of the per-event path."""
    ev = random_events(spark, seed=timeout * 100 + max_hours)
    per_event = with_session_id(ev, timeout, max_hours)
    want = sorted(sessions_from_events(per_event, 10).collect())
    assert sorted(sessions(ev, timeout, max_hours, 10).collect()) == want
    spans = sorted(session_spans(ev.select("person_id", "event_ts"), timeout, max_hours).collect())
    cols = ["person_id", "session_id", "session_start_ts", "session_end_ts", "event_count"]
    assert spans == sorted(sessions_from_events(per_event, 10).select(*cols, "is_split").collect())
    # the cases the buckets must get right occur in the data
    by_person: dict[str, list] = {}
    for r in want:
        by_person.setdefault(r["person_id"], []).append(r)
    cut = 0
    for rows in by_person.values():
        rows.sort(key=lambda r: r["session_start_ts"])
        for a, b in itertools.pairwise(rows):
            gap = (b["session_start_ts"] - a["session_end_ts"]).total_seconds()
            same_bucket = int(a["session_end_ts"].timestamp()) // (timeout * 60) == int(
                b["session_start_ts"].timestamp()
            ) // (timeout * 60)
            cut += gap <= timeout * 60 and same_bucket  # a slice boundary inside a bucket
    assert sum(r["is_split"] for r in want) > 0 and len(want) > 40
    if max_hours == 1:
        assert cut > 0
    else:
        assert cut == 0


def test_sessions_without_cut_buckets_read_events_once(spark: SparkSession) -> None:
    """No slice boundary inside a bucket: the pieces come from one pass (no join back to
    the events); with cut buckets the plan joins them back."""
    ev = random_events(spark, seed=3)
    plan = lambda df: df._jdf.queryExecution().optimizedPlan().toString()  # noqa: E731
    assert "Join" not in plan(sessions(ev, 30, 24, 10))
    assert "Join" in plan(sessions(ev, 30, 1, 10))


def test_conform_and_sessions_shuffle_twice_only(spark: SparkSession) -> None:
    """Windows run on the narrow bronze rows: one shuffle by message_id (dedup), one by
    person_id (rate, consent); sessionization reuses the person_id order -- no third
    shuffle of the wide typed rows."""
    s = SilverSettings()
    b = bronze(spark, [bronze_row(f"m{i}", ts=T0 + timedelta(minutes=i)) for i in range(3)])
    resolved = with_person(b, identity_links(b, s.max_ids_per_person), KEY)
    local = spark.createDataFrame(resolved.collect(), resolved.schema)  # no upstream shuffles
    kept = conform_rows(local, TAX, s, s.kept_context_fields).filter(F.col("_status") == "silver")
    plan = with_session_id(kept, 30, 24)._jdf.queryExecution().executedPlan().toString()
    keys = re.findall(r"Exchange hashpartitioning\((\w+)", plan)
    assert keys == ["person_id", "message_id"]  # top-down: person_id above message_id
