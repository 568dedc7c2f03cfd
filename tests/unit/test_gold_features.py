"""gold.user_features on hand-made events: values, point-in-time cut, lags, catalog, drift."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from behavior_lake.config import FeatureSettings
from behavior_lake.gold.feature_build import build_user_features, impute
from behavior_lake.gold.feature_defs import catalog_rows, feature_defs, user_features_spec
from behavior_lake.gold.feature_drift import feature_drift
from behavior_lake.gold.feature_inputs import learn_vocabulary, session_ngrams

CATS = ["cart", "product", "purchase"]
CFG = FeatureSettings(
    windows_days=[7, 30],
    platforms=["web", "ios"],
    path_vocabulary_size=3,
    path_ngram_sizes=[2],
    path_min_person_share=0.0,
    path_max_person_share=1.0,
)
AS_OF = date(2026, 3, 1)
CATEGORY = {"product_viewed": "product", "product_added": "cart", "order_completed": "purchase"}

EVENT_COLS = (
    "message_id string, person_id string, session_id string, event_ts timestamp, "
    "event_date date, event_name string, category string, platform string, revenue decimal(18,2)"
)
SESSION_COLS = (
    "session_id string, person_id string, session_date date, session_start_ts timestamp, "
    "session_end_ts timestamp, duration_s double, is_bounce boolean"
)


def ts(days_before: float, hour: int = 12) -> datetime:
    return datetime(2026, 3, 1, hour) - timedelta(days=days_before)


MSG = itertools.count(1)


def ev(pid: str, sid: str, t: datetime, name: str, platform: str = "web", rev=None):
    return (
        f"m{next(MSG):04d}", pid, sid, t, t.date(), name, CATEGORY[name], platform,
        None if rev is None else Decimal(str(rev)),
    )  # fmt: skip


def sessions_of(events: list[tuple]) -> list[tuple]:
    by: dict[str, list[tuple]] = {}
    for e in events:
        by.setdefault(e[2], []).append(e)
    out = []
    for sid, es in by.items():
        t0, t1 = min(e[3] for e in es), max(e[3] for e in es)
        out.append((sid, es[0][1], t0.date(), t0, t1, (t1 - t0).total_seconds(), len(es) == 1))
    return out


def scenario() -> list[tuple]:
    e = []
    # person a: a long history, two sessions in the last week, one order 3 days ago
    e += [ev("a", "a1", ts(60), "product_viewed")]
    e += [
        ev("a", "a2", ts(20), "product_viewed", "ios"),
        ev("a", "a2", ts(20, 13), "product_added", "ios"),
    ]
    e += [
        ev("a", "a3", ts(3), "product_viewed"),
        ev("a", "a3", ts(3, 13), "product_added"),
        ev("a", "a3", ts(3, 14), "order_completed", rev=25.5),
    ]
    e += [ev("a", "a4", ts(1), "product_viewed")]
    # person b: only one event 10 days ago, never purchased
    e += [ev("b", "b1", ts(10), "product_viewed", "android")]
    return e  # fmt: skip


def frames(spark: SparkSession, events: list[tuple]) -> tuple[DataFrame, DataFrame]:
    return (
        spark.createDataFrame(events, EVENT_COLS),
        spark.createDataFrame(sessions_of(events), SESSION_COLS),
    )


def vocab(spark: SparkSession, ev_df: DataFrame) -> DataFrame:
    grams = session_ngrams(ev_df, CFG.path_ngram_sizes)
    return learn_vocabulary(grams, AS_OF - timedelta(days=90), AS_OF, CFG)


def build(spark: SparkSession, events: list[tuple], as_of=(AS_OF,)) -> DataFrame:
    ev_df, ss_df = frames(spark, events)
    return build_user_features(ev_df, ss_df, vocab(spark, ev_df), list(as_of), CFG, CATS)


@pytest.fixture(scope="module")
def rows(spark: SparkSession) -> dict[str, dict]:
    df = build(spark, scenario())
    return {r["person_id"]: r.asDict() for r in df.collect()}


def test_hand_computed_values(rows) -> None:
    a, b = rows["a"], rows["b"]
    assert a["events_7d"] == 4 and a["events_30d"] == 6
    assert a["active_days_7d"] == 2 and a["active_days_30d"] == 3
    assert a["orders_7d"] == 1 and a["revenue_30d"] == pytest.approx(25.5)
    assert a["cart_events_30d"] == 2 and a["purchase_events_7d"] == 1
    assert a["recency_days_event"] == pytest.approx(1 - 12 / 24)  # yesterday 12:00
    assert a["recency_days_purchase"] == pytest.approx(3 - 14 / 24)
    assert a["tenure_days"] == pytest.approx(60 - 12 / 24)
    # sessions a2 (1 h), a3 (2 h), a4 (0 s, bounce) end within 30 days; a1 only in 90d
    assert a["sessions_7d"] == 2 and a["sessions_30d"] == 3
    assert a["avg_session_duration_s_30d"] == pytest.approx((3600 + 7200 + 0) / 3)
    assert a["median_session_duration_s_30d"] == pytest.approx(3600)
    assert a["bounce_rate_30d"] == pytest.approx(1 / 3)
    assert a["recency_days_session"] == pytest.approx(0.5)
    # trend: 4 events in last 7 days, 2 in the 21 before -> (4+1)/(2/3+1)
    assert a["events_trend_7_21"] == pytest.approx(5 / (2 / 3 + 1))
    assert a["sessions_trend_7_21"] == pytest.approx(3 / (1 / 3 + 1))
    assert a["platform_share_ios_30d"] == pytest.approx(2 / 6)
    assert a["platform_share_web_30d"] == pytest.approx(4 / 6)
    expected = sum(2 ** (-age / 14) * n for age, n in [(60, 1), (20, 2), (3, 3), (1, 1)])
    assert a["engagement_score"] == pytest.approx(expected)
    assert b["recency_days_purchase"] is None and b["orders_30d"] == 0
    assert b["platform_share_other_30d"] == pytest.approx(1.0)
    assert b["events_7d"] == 0 and b["events_30d"] == 1


def test_click_path_slots_count_vocabulary(spark: SparkSession, rows) -> None:
    ev_df, _ = frames(spark, scenario())
    v = {r["ngram"]: r["slot"] for r in vocab(spark, ev_df).collect()}
    assert "product_viewed > product_added" in v
    slot = v["product_viewed > product_added"]
    assert rows["a"][f"path_{slot:02d}_30d"] == 2  # a2 and a3
    assert rows["b"][f"path_{slot:02d}_30d"] == 0


def test_future_events_never_leak(spark: SparkSession) -> None:
    """Events at or after as_of_date 00:00, and sessions or n-grams ending after it,
    change nothing in that snapshot."""
    base = build(spark, scenario()).drop("computed_at")
    late = [
        *scenario(),
        ev("a", "a4", datetime(2026, 3, 1, 0, 0), "product_added"),  # extends session a4
        ev("a", "a5", datetime(2026, 3, 1, 9), "order_completed", rev=99),
        ev("c", "c1", datetime(2026, 3, 2, 9), "product_viewed"),  # a new person, later
    ]
    ev_df, ss_df = frames(spark, late)
    again = build_user_features(
        ev_df, ss_df, vocab(spark, frames(spark, scenario())[0]), [AS_OF], CFG, CATS
    ).drop("computed_at")
    # a4 now ends after the cutoff, so it is not counted: exactly that difference
    a_old = base.filter("person_id = 'a'").first()
    a_new = again.filter("person_id = 'a'").first()
    assert a_new["sessions_7d"] == a_old["sessions_7d"] - 1
    assert a_new["events_7d"] == a_old["events_7d"]
    same = [c for c in base.columns if "session" not in c and "bounce" not in c]
    assert_df_equality(
        base.select(same), again.select(same), ignore_row_order=True, ignore_nullable=True
    )


def test_several_dates_in_one_run_match_single_runs(spark: SparkSession) -> None:
    dates = [AS_OF - timedelta(days=14), AS_OF - timedelta(days=7), AS_OF]
    many = build(spark, scenario(), dates).drop("computed_at")
    assert {r[0] for r in many.select("as_of_date").distinct().collect()} == set(dates)
    for d in dates[-1:]:  # the one whose lags come from inside the series
        one = build(spark, scenario(), [d]).drop("computed_at")
        assert_df_equality(
            many.filter(F.col("as_of_date") == d), one, ignore_row_order=True, ignore_nullable=True
        )
    prev = many.filter(F.col("as_of_date") == dates[1]).select("person_id", "events_30d")
    cur = many.filter(F.col("as_of_date") == dates[2]).select("person_id", "lag_events_30d")
    got = {r[0]: r[1] for r in cur.collect()}
    assert got == {r[0]: r[1] for r in prev.collect()}


def test_catalog_is_the_table_schema(spark: SparkSession, rows) -> None:
    defs = feature_defs(CFG, CATS)
    spec = user_features_spec(defs)
    cat = catalog_rows(spark, defs, "team").collect()
    names = [r["feature"] for r in sorted(cat, key=lambda r: r["position"])]
    assert names == spec.schema.fieldNames()[2:-1]
    assert set(rows["a"]) == set(spec.schema.fieldNames())
    assert all(r["definition"] and r["source_tables"] and r["unit"] for r in cat)


def test_impute_fills_documented_values(spark: SparkSession) -> None:
    defs = feature_defs(CFG, CATS)
    df = build(spark, scenario())
    b = impute(df, defs).filter("person_id = 'b'").first()
    assert b["recency_days_purchase"] == CFG.recency_cap_days
    assert b["median_session_duration_s_30d"] is not None


def _psi(cur: list[float], ref: list[float], bins: int) -> float:
    """Independent PSI: reference quantile edges, shares floored at 1e-4."""
    s = sorted(ref)
    edges = sorted({s[min(len(s) - 1, math.ceil(q / bins * len(s)) - 1)] for q in range(1, bins)})

    def shares(vals):
        counts = [0] * (len(edges) + 1)
        for v in vals:
            counts[sum(1 for e in edges if e < v)] += 1
        return [max(c / len(vals), 1e-4) for c in counts]

    a, e = shares(cur), shares(ref)
    return sum((x - y) * math.log(x / y) for x, y in zip(a, e, strict=True))


def test_drift_psi_and_flags(spark: SparkSession) -> None:
    d0, d1 = date(2026, 2, 1), date(2026, 2, 8)
    ref = [float(i % 50) for i in range(400)]
    cur = [float(i % 50) + 20 for i in range(400)]
    rows_ = [(f"p{i}", d0, v, 1.0) for i, v in enumerate(ref)]
    rows_ += [(f"p{i}", d1, v, None if i < 100 else 1.0) for i, v in enumerate(cur)]
    df = spark.createDataFrame(rows_, "person_id string, as_of_date date, x double, y double")
    cfg = replace(CFG, drift_bins=10)
    out = {r["feature"]: r for r in feature_drift(df, [(d1, d0)], ["x", "y"], cfg).collect()}
    assert out["x"]["psi"] == pytest.approx(_psi(cur, ref, 10), rel=0.05)
    assert out["x"]["is_flagged"] and "psi" in out["x"]["flag_reason"]
    assert out["y"]["null_rate"] == pytest.approx(0.25) and out["y"]["reference_null_rate"] == 0
    assert out["y"]["psi"] == pytest.approx(0.0, abs=1e-9)
    assert out["y"]["is_flagged"] and "null rate" in out["y"]["flag_reason"]
    same = feature_drift(df, [(d0, d0)], ["x"], cfg).first()
    assert same["psi"] == pytest.approx(0.0, abs=1e-9) and not same["is_flagged"]
