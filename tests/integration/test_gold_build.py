"""Gold on generated data: features recomputed independently, no leakage, jobs, reports."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

import pytest
from pyspark.sql import functions as F

from behavior_lake.gold.build import USER_FEATURES
from tests.integration.conftest import Demo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(demo: Demo):
    """The demo fixture built the weekly feature series; report what it wrote."""
    return demo, demo.as_of_dates, None


def test_series_written_with_catalog_and_drift(built) -> None:
    demo, dates, _ = built
    lake = demo.lake
    assert len(dates) >= 3 and dates[-1] == demo.last_day + timedelta(days=1)
    got = sorted(r[0] for r in lake.read(USER_FEATURES).select("as_of_date").distinct().collect())
    assert got == dates
    catalog = {r.feature for r in lake.read("gold.feature_catalog").collect()}
    assert catalog == set(lake.read(USER_FEATURES).columns) - {
        "person_id",
        "as_of_date",
        "computed_at",
    }
    drift = lake.read("ops.feature_drift")
    assert drift.select("as_of_date").distinct().count() == len(dates) - 1  # first has no reference
    assert drift.count() == (len(dates) - 1) * len(catalog)
    assert lake.read("gold.path_vocabulary").count() > 0


def test_features_match_independent_recomputation(built) -> None:
    """Recompute a handful of features in plain Python from silver rows."""
    demo, dates, _ = built
    lake = demo.lake
    feats = lake.read(USER_FEATURES)
    persons = sorted(r[0] for r in feats.select("person_id").distinct().collect())
    sample = random.Random(7).sample(persons, 6)
    mine_only = F.col("person_id").isin(sample)
    ev = (
        lake.read("silver.events")
        .filter(mine_only)
        .select("person_id", "event_ts", "event_date", "event_name", "revenue")
        .collect()
    )
    se = lake.read("silver.sessions").filter(mine_only).select("person_id", "session_end_ts")
    se = se.collect()
    rows = {(r.person_id, r.as_of_date): r for r in feats.filter(mine_only).collect()}
    hl = demo.settings.gold.features.engagement_half_life_days
    checked = 0
    for as_of in dates[-2:]:
        cut = datetime.combine(as_of, datetime.min.time())
        for p in sample:
            mine = [e for e in ev if e.person_id == p and e.event_date < as_of]
            ages = {id(e): (as_of - e.event_date).days for e in mine}
            r = rows.get((p, as_of))
            if not mine:
                assert r is None
                continue
            assert r is not None
            assert r.events_30d == sum(1 for e in mine if ages[id(e)] <= 30)
            assert r.active_days_7d == len({e.event_date for e in mine if ages[id(e)] <= 7})
            orders = [e for e in mine if e.event_name == "order_completed" and ages[id(e)] <= 90]
            assert r.orders_90d == len(orders)
            assert r.revenue_90d == pytest.approx(float(sum(e.revenue or 0 for e in orders)))
            last = max(e.event_ts for e in mine)
            assert r.recency_days_event == pytest.approx((cut - last).total_seconds() / 86400)
            first = min(e.event_ts for e in mine)
            assert r.tenure_days == pytest.approx((cut - first).total_seconds() / 86400)
            assert r.engagement_score == pytest.approx(sum(0.5 ** (ages[id(e)] / hl) for e in mine))
            ended = [s for s in se if s.person_id == p and s.session_end_ts < cut]
            assert r.sessions_30d == sum(
                1 for s in ended if (as_of - s.session_end_ts.date()).days <= 30
            )
            checked += 1
    assert checked >= 6


def test_nothing_at_or_after_as_of_contributes(built) -> None:
    demo = built[0]
    feats = demo.lake.read(USER_FEATURES)
    assert feats.filter("recency_days_event <= 0 OR tenure_days < recency_days_event").count() == 0
    assert feats.filter("recency_days_session <= 0 OR recency_days_purchase <= 0").count() == 0


def test_reports_job(built) -> None:
    from behavior_lake.jobs import gold_kpis

    demo, _, _ = built
    root = demo.settings.lake.root
    assert gold_kpis.cli(["--conf", f"lake.root={root}", "--conf", "spark.master=local[2]"]) == 0
    lake = demo.lake
    cohorts = lake.read("gold.retention_cohorts")
    first = cohorts.filter("cohort_type = 'first_seen' AND week_number = 0").collect()
    assert first and all(r.retained == r.cohort_size for r in first)
    total = (
        cohorts.filter("cohort_type = 'first_seen' AND week_number = 0")
        .groupBy()
        .sum("cohort_size")
        .first()[0]
    )
    assert total == lake.read("silver.events").select("person_id").distinct().count()
    f = lake.read("gold.funnels").filter("funnel_name = 'checkout'").collect()
    assert f and all(r.persons <= r.entrants for r in f)
    by_day: dict[date, list] = {}
    for r in f:
        by_day.setdefault(r.funnel_date, []).append(r)
    for steps in by_day.values():
        counts = [r.persons for r in sorted(steps, key=lambda r: r.step_index)]
        assert counts == sorted(counts, reverse=True)  # a funnel never widens
    trans = lake.read("gold.paths").filter("kind = 'transition'")
    sums = trans.groupBy("from_event").sum("probability").collect()
    assert all(abs(r[1] - 1.0) < 1e-9 for r in sums)
