"""gold.daily_kpis against values computed by hand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from pyspark.sql import SparkSession

from behavior_lake.gold.kpis import daily_kpis


def test_daily_kpis_by_hand(spark: SparkSession) -> None:
    d = lambda day: date(2026, 1, day)  # noqa: E731
    events = spark.createDataFrame(
        [
            ("p1", d(1), "web", "page_viewed", None),
            ("p1", d(3), "web", "order_completed", Decimal("10.00")),
            ("p2", d(3), "ios", "screen_viewed", None),
            ("p1", d(9), "ios", "screen_viewed", None),
        ],
        "person_id string, event_date date, platform string, event_name string, "
        "revenue decimal(18,2)",
    )
    sessions = spark.createDataFrame(
        [(d(1), "web", 60.0, False), (d(3), "web", 120.0, True), (d(3), "ios", 30.0, False)],
        "session_date date, platform string, duration_s double, has_conversion boolean",
    )
    rows = {(r["kpi_date"].day, r["platform"]): r for r in daily_kpis(events, sessions).collect()}
    assert len(rows) == 9 * 3  # every day from the 1st to the 9th, for web, ios and all

    def kpi(day: int, platform: str) -> tuple:
        r = rows[(day, platform)]
        return r["dau"], r["wau"], r["mau"]

    assert kpi(1, "all") == (1, 1, 1) and kpi(1, "ios") == (0, 0, 0)
    assert rows[(1, "ios")]["stickiness"] is None  # no MAU, no ratio
    assert kpi(3, "all") == (2, 2, 2) and kpi(3, "web") == (1, 1, 1)
    assert kpi(8, "all") == (0, 2, 2)  # a quiet day keeps its rolling counts
    assert kpi(9, "all") == (1, 2, 2) and kpi(9, "ios") == (1, 2, 2) and kpi(9, "web") == (0, 1, 1)
    assert rows[(9, "all")]["stickiness"] == pytest.approx(0.5)
    r3 = rows[(3, "all")]
    assert (r3["sessions"], r3["avg_session_duration_s"], r3["conversion_rate"]) == (2, 75.0, 0.5)
    assert (r3["orders"], r3["revenue"]) == (1, Decimal("10.00"))
    assert rows[(3, "web")]["revenue"] == Decimal("10.00") and rows[(3, "ios")]["orders"] == 0
    r8 = rows[(8, "all")]
    assert (r8["sessions"], r8["avg_session_duration_s"], r8["conversion_rate"]) == (0, None, None)
    # the last day of the data is still filling up: flagged, every earlier day complete
    assert [d for (d, p), r in rows.items() if p == "all" and not r["is_complete"]] == [9]
    # nine days of data: no row has 30 days of history behind its MAU
    assert not any(r["full_window"] for r in rows.values())


def test_full_window_after_thirty_days(spark: SparkSession) -> None:
    events = spark.createDataFrame(
        [("p1", date(2026, 1, 1), "web", "page_viewed", None),
         ("p1", date(2026, 2, 15), "web", "page_viewed", None)],
        "person_id string, event_date date, platform string, event_name string, "
        "revenue decimal(18,2)",
    )  # fmt: skip
    sessions = spark.createDataFrame([], "session_date date, platform string, "
                                     "duration_s double, has_conversion boolean")  # fmt: skip
    rows = {r["kpi_date"]: r for r in daily_kpis(events, sessions).collect()
            if r["platform"] == "all"}  # fmt: skip
    assert not rows[date(2026, 1, 29)]["full_window"]  # 29 days of data behind it
    assert rows[date(2026, 1, 30)]["full_window"]  # Jan 1..30
    assert rows[date(2026, 2, 14)]["is_complete"] and not rows[date(2026, 2, 15)]["is_complete"]
