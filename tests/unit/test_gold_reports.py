"""Retention cohorts, funnels and paths against hand-computed values."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from pyspark.sql import DataFrame, SparkSession

from behavior_lake.config import FunnelSettings, PathSettings
from behavior_lake.gold.reports import check_funnels, funnels, paths, retention_cohorts

COLS = "message_id string, person_id string, session_id string, event_ts timestamp, "
COLS += "event_date date, event_name string"
PV, PA, OC = "product_viewed", "product_added", "order_completed"


def frame(spark: SparkSession, rows: list[tuple]) -> DataFrame:
    out = [(f"m{i}", p, s, t, t.date(), n) for i, (p, s, t, n) in enumerate(rows)]
    return spark.createDataFrame(out, COLS)


def test_retention_cohorts(spark: SparkSession) -> None:
    d = lambda day: datetime(2026, 1, day, 12)  # noqa: E731  (2026-01-05 is a Monday)
    ev = frame(
        spark,
        [
            ("p1", "s", d(5), PV), ("p1", "s", d(14), PV), ("p1", "s", d(28), PV),
            ("p2", "s", d(7), PV), ("p2", "s", d(13), OC),
            ("p3", "s", d(13), OC), ("p3", "s", d(20), PV),
        ],
    )  # fmt: skip
    got = {
        (r.cohort_type, r.cohort_week.day, r.week_number): (
            r.cohort_size,
            r.retained,
            r.retention_rate,
            r.is_complete,
        )
        for r in retention_cohorts(ev, 12, {"first_order": OC}).collect()
    }
    assert got == {
        ("first_seen", 5, 0): (2, 2, 1.0, True),
        ("first_seen", 5, 1): (2, 2, 1.0, True),
        ("first_seen", 5, 2): (2, 0, 0.0, True),
        ("first_seen", 5, 3): (2, 1, 0.5, False),
        ("first_seen", 12, 0): (1, 1, 1.0, True),
        ("first_seen", 12, 1): (1, 1, 1.0, True),
        ("first_seen", 12, 2): (1, 0, 0.0, False),
        ("first_order", 12, 0): (2, 2, 1.0, True),
        ("first_order", 12, 1): (2, 1, 0.5, True),
        ("first_order", 12, 2): (2, 0, 0.0, False),
    }


def test_funnel_steps_order_and_window(spark: SparkSession) -> None:
    t = lambda h, m=0: datetime(2026, 2, 3, h, m)  # noqa: E731
    ev = frame(
        spark,
        [
            ("p1", "a", t(10), PV), ("p1", "a", t(10, 10), PA), ("p1", "a", t(10, 30), OC),
            ("p1", "b", t(15), PV),  # a second entry the same day is not a new entrant
            ("p2", "c", t(11), PV), ("p2", "c", t(12, 30), PA),  # after the 1 h window
            ("p3", "d", t(9), PA), ("p3", "d", t(9, 30), PV), ("p3", "d", t(9, 40), OC),
            ("p4", "e", t(9), "products_searched"),  # not in the funnel
        ],
    )  # fmt: skip
    spec = {"buy": FunnelSettings(steps=[PV, PA, OC], window_hours=1.0)}
    rows = {r.step_index: r for r in funnels(ev, spec).collect()}
    assert [rows[k].persons for k in (1, 2, 3)] == [3, 1, 1]
    assert all(r.entrants == 3 and r.funnel_date == date(2026, 2, 3) for r in rows.values())
    assert rows[2].step_conversion == pytest.approx(1 / 3)
    assert rows[3].step_conversion == pytest.approx(1.0)
    assert rows[3].overall_conversion == pytest.approx(1 / 3)
    assert rows[2].median_seconds_from_entry == 600
    assert rows[3].median_seconds_from_entry == 1800
    assert rows[3].step_name == OC and rows[1].is_complete


def test_funnel_config_is_checked() -> None:
    with pytest.raises(ValueError, match=r"gold.funnels.x.steps: unknown event"):
        check_funnels({"x": FunnelSettings(steps=[PV, "Bought"])}, {PV, PA})
    with pytest.raises(ValueError, match="at least 2 steps"):
        check_funnels({"x": FunnelSettings(steps=[PV])}, {PV})


def test_paths_transitions_and_top_paths(spark: SparkSession) -> None:
    t = lambda m: datetime(2026, 2, 3, 10, m)  # noqa: E731
    ev = frame(
        spark,
        [
            ("p", "s1", t(0), PV), ("p", "s1", t(1), PV), ("p", "s1", t(2), PA),
            ("q", "s2", t(5), PV), ("q", "s2", t(6), PA),
            ("r", "s3", t(9), PV),
        ],
    )  # fmt: skip
    out = paths(ev, PathSettings(top_n=10, max_steps=5, collapse_repeats=True)).collect()
    trans = {
        (r.from_event, r.to_event): (r["count"], r.probability)
        for r in out
        if r.kind == "transition"
    }
    assert trans == {
        ("$start", PV): (3, 1.0),
        (PV, PV): (1, 0.25),
        (PV, PA): (2, 0.5),
        (PV, "$end"): (1, 0.25),
        (PA, "$end"): (2, 1.0),
    }
    top = {r.path: (r["count"], r.rank, r.steps) for r in out if r.kind == "top_path"}
    assert top == {f"{PV} > {PA}": (2, 1, 2), PV: (1, 2, 1)}
    short = paths(ev, PathSettings(top_n=1, max_steps=1, collapse_repeats=False)).collect()
    assert [(r.path, r["count"]) for r in short if r.kind == "top_path"] == [(f"{PV} > ...", 2)]
