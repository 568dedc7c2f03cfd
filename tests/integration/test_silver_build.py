"""Generator -> bronze -> silver on small planted data."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import shutil
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from chispa import assert_df_equality
from pyspark.sql import SparkSession

from behavior_lake.bronze.ingest import ingest
from behavior_lake.catalog import resolve
from behavior_lake.config import Settings
from behavior_lake.contracts.taxonomy import load_taxonomy
from behavior_lake.generator.generate import generate
from behavior_lake.lake import Lake, make_lake
from behavior_lake.silver.build import build_silver
from behavior_lake.silver.conform import SILVER_REASONS
from tests.conftest import CONF
from tests.integration.conftest import Demo
from tests.integration.test_bronze_ingest import make_settings

TAX = load_taxonomy(CONF)


def pid(s: Settings, prefix: str, raw: str) -> str:
    key = s.privacy.pseudonym_key.encode()
    return hmac.new(key, (prefix + raw).encode(), hashlib.sha256).hexdigest()[:32]


def settings_for(tmp: Path, users: int, days: int, late: int) -> Settings:
    s = make_settings(tmp, users=users, days=days)
    return replace(s, generator=replace(s.generator, max_late_days=late, bot_share=0.05))


def lake_for(spark: SparkSession, s: Settings) -> Lake:
    """Lakes of their own for the day-by-day tests: on delta-rs, the embedded engine's
    share of the integration suite (the demo lake they are checked against, and every
    other silver test, run on the default engine)."""
    return make_lake(spark, s.lake.root, "delta-rs", resolve(s))


@pytest.fixture(scope="module")
def built(demo: Demo):
    """The shared demo lake (generator -> bronze -> silver, 5% bots, late arrivals)."""
    return demo.settings, demo.lake, demo.silver_stats


def test_counts_add_up_and_rerun_is_noop(built) -> None:
    s, lake, st = built
    bronze = lake.read("bronze.events").count()
    assert st.bronze_rows == bronze
    assert st.silver_rows + st.reject_rows + st.duplicate_rows + st.consent_dropped_rows == bronze
    assert lake.read("silver.events").count() == st.silver_rows
    assert lake.read("silver.rejects").count() == st.reject_rows
    assert st.duplicate_rows > 0 and st.consent_dropped_rows > 0 and st.reject_rows > 0
    assert st.reasons and set(st.reasons) <= set(SILVER_REASONS)
    assert lake.read("silver.events").groupBy("message_id").count().filter("count > 1").count() == 0
    v = lake.version("silver.events")
    again = build_silver(lake, s, TAX, "r-again")
    assert again.new_batches == 0 and lake.version("silver.events") == v


def test_independent_sessionization_agrees(built) -> None:
    s, lake, _ = built
    timeout = timedelta(minutes=s.silver.session_timeout_minutes)
    max_len = timedelta(hours=s.silver.max_session_hours)
    events = lake.read("silver.events").select("person_id", "event_ts", "message_id").collect()
    by_person: dict[str, list] = {}
    for e in events:
        by_person.setdefault(e["person_id"], []).append((e["event_ts"], e["message_id"]))
    expected = set()
    for person, evs in by_person.items():
        evs.sort()
        start = prev = None
        count = 0
        for ts, _mid in evs:
            if start is None or ts - prev > timeout or ts - start >= max_len:
                if start is not None:
                    expected.add((person, start, count))
                start, count = ts, 0
            prev, count = ts, count + 1
        expected.add((person, start, count))
    got = {
        (r["person_id"], r["session_start_ts"], r["event_count"])
        for r in lake.read("silver.sessions").collect()
    }
    assert got == expected


def test_stitched_persons_match_truth(built) -> None:
    s, lake, _ = built
    truth = [
        json.loads(x)
        for x in (Path(s.landing.truth_root) / "users" / "users.jsonl").read_text().splitlines()
    ]
    ident = {
        r["anonymous_id_hash"]: r["person_id"] for r in lake.read("silver.identity_map").collect()
    }
    checked = 0
    for t in truth:
        for dev in t["devices"]:
            if dev["signin_session"] and dev["anonymous_id"] not in (
                "null",
                "undefined",
                "0",
                "anonymous",
                "",
            ):
                h = pid(s, "anon:", dev["anonymous_id"])
                if h in ident:  # the device reached its sign-in session
                    assert ident[h] == pid(s, "user:", t["user_id"])
                    checked += 1
    assert checked >= 10
    persons = {r[0] for r in lake.read("silver.events").select("person_id").distinct().collect()}
    identified = {pid(s, "user:", t["user_id"]) for t in truth}
    assert persons & identified


def test_no_raw_identifiers_reach_silver(built) -> None:
    s, lake, _ = built
    truth = [
        json.loads(x)
        for x in (Path(s.landing.truth_root) / "users" / "users.jsonl").read_text().splitlines()
    ]
    raw = (
        {t["user_id"] for t in truth}
        | {t["email"] for t in truth}
        | {d["anonymous_id"] for t in truth for d in t["devices"] if len(d["anonymous_id"]) > 8}
    )
    for table in ("silver.events", "silver.sessions", "silver.rejects", "silver.identity_map"):
        text = "\n".join(
            json.dumps(r.asDict(recursive=True), default=str) for r in lake.read(table).collect()
        )
        leaked = [x for x in raw if x in text]
        assert not leaked, f"{table} holds raw identifiers: {leaked[:3]}"
        assert not re.search(r"\b10\.\d{1,3}\.\d{1,3}\.\d{1,3}\b", text), f"{table}: an ip"
        assert not re.search(r"Mozilla/5\.0|ShopApp/|python-requests|Googlebot", text), table


def _comparable(df):
    """Maps cannot be sorted/hashed: compare them as sorted entry lists (JSON)."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    return df.select(
        *[
            F.to_json(F.array_sort(F.map_entries(c.name))).alias(c.name)
            if isinstance(c.dataType, T.MapType)
            else F.col(c.name)
            for c in df.schema.fields
        ]
    )


def _compare(a: Lake, b: Lake, table: str, drop: tuple[str, ...] = ()) -> None:
    left = _comparable(a.read(table).drop(*drop))
    right = _comparable(b.read(table).drop(*drop))
    assert left.count() > 0
    assert_df_equality(left, right, ignore_row_order=True, ignore_nullable=True)


@pytest.mark.e2e  # eight silver runs: make test-e2e
def test_day_by_day_equals_all_at_once(spark: SparkSession, tmp_path: Path) -> None:
    s_all = settings_for(tmp_path / "all", users=10, days=2, late=1)
    generate(spark, s_all.generator, s_all.landing.root, s_all.landing.truth_root)
    lake_all = lake_for(spark, s_all)
    ingest(lake_all, s_all, TAX, "all")
    build_silver(lake_all, s_all, TAX, "all")

    s_inc = replace(
        s_all,
        lake=replace(s_all.lake, root=str(tmp_path / "inc" / "lake")),
        landing=replace(s_all.landing, root=str(tmp_path / "inc" / "landing")),
    )
    lake_inc = lake_for(spark, s_inc)
    days = sorted(p.name for p in Path(s_all.landing.root).iterdir())
    assert len(days) == 3  # two days of activity + late arrivals on the third
    for day in days:
        shutil.copytree(Path(s_all.landing.root) / day, Path(s_inc.landing.root) / day)
        ingest(lake_inc, s_inc, TAX, f"inc-{day}")
        build_silver(lake_inc, s_inc, TAX, f"inc-{day}")

    _compare(lake_all, lake_inc, "silver.events", ("ingest_batch_id",))
    _compare(lake_all, lake_inc, "silver.sessions")
    _compare(lake_all, lake_inc, "silver.rejects", ("ingest_batch_id",))
    _compare(lake_all, lake_inc, "silver.identity_map")

    # A full rebuild of the incremental lake changes nothing either.
    st = build_silver(lake_inc, s_inc, TAX, "inc-full", full=True)
    assert st.bronze_rows == lake_inc.read("bronze.events").count()
    _compare(lake_all, lake_inc, "silver.events", ("ingest_batch_id",))
    _compare(lake_all, lake_inc, "silver.sessions")
