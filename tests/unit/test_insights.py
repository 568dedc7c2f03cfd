"""Insights building blocks: SVG charts, takeaways, the dashboard document."""

from __future__ import annotations

import copy
import xml.etree.ElementTree as ET
from datetime import date, timedelta

import pytest

from behavior_lake.insights import panels as P
from behavior_lake.insights import svg
from behavior_lake.insights.lakeview import dashboard, dashboard_problems

NS = "{http://www.w3.org/2000/svg}"


def parse(doc: str) -> ET.Element:
    return ET.fromstring(doc)  # well-formed XML, or this raises


def test_line_chart_shades_incomplete_periods_and_breaks_at_gaps() -> None:
    doc = svg.line_chart("c", "t", ["d1", "d2", "d3", "d4"],
                         {"a": [1.0, None, 3.0, 4.0]}, shaded=[False, False, False, True])  # fmt: skip
    root = parse(doc)
    shades = [r for r in root.iter(f"{NS}rect") if r.get("class") == "shade"]
    assert len(shades) == 1
    lines = [p for p in root.iter(f"{NS}polyline") if p.get("class") == "series"]
    circles = [c.get("class") for c in root.iter(f"{NS}circle")]
    # the gap splits the line (d1 alone: a dot, d3 a dot: d4 is partial, off the line)
    assert len(lines) == 0 and circles == ["partial", None, None]
    assert "not over yet" in doc
    full = parse(svg.line_chart("c", "t", ["a", "b", "c"], {"a": [1.0, 2.0, 3.0]}))
    assert len([p for p in full.iter(f"{NS}polyline")]) == 1  # positive control


def test_heatmap_hatches_missing_cells() -> None:
    root = parse(svg.heatmap("h", "t", ["a", "b"], ["w0", "w1"], [[1.0, 0.5], [1.0, None]]))
    cells = [r for r in root.iter(f"{NS}rect") if (r.get("class") or "").startswith("cell")]
    assert [c.get("class") for c in cells] == ["cell", "cell", "cell", "cell missing"]


def test_bar_chart_and_labels() -> None:
    root = parse(svg.bar_chart("b", "t", ["x", "y"], [3.0, 0.0], notes=["n1", ""]))
    bars = [r for r in root.iter(f"{NS}rect") if r.get("class") == "bar"]
    assert float(bars[0].get("width")) > float(bars[1].get("width"))
    assert svg.short(12345.0) == "12.3k" and svg.short(0.123, "pct") == "12.3%"
    assert svg.nice_max(73) == 100 and svg.nice_max(0.3) == 0.5 and svg.nice_max(0) == 1.0


def kpi_rows(n: int, last_incomplete: bool = True) -> list[dict]:
    start = date(2026, 1, 1)
    return [
        {"kpi_date": start + timedelta(days=i), "dau": 10.0 + i, "wau": 20.0, "mau": 30.0,
         "revenue": 100.0, "orders": 2, "conversion_rate": 0.1,
         "is_complete": not (last_incomplete and i == n - 1)}
        for i in range(n)
    ]  # fmt: skip


def test_kpi_takeaway_names_the_partial_day_and_the_trend() -> None:
    rows = kpi_rows(15)
    text = P.kpi_takeaway(rows)
    # complete days have dau 10..23: the last 7 average 20, the 7 before 13
    assert "averaged 20 over the last 7 complete days" in text
    assert "up 53.8% on the 7 days before" in text  # (20 - 13) / 13
    assert "2026-01-15 is still filling up" in text


def test_retention_takeaway_weights_by_cohort_size() -> None:
    rows = [
        {"cohort_week": "a", "week_number": 1, "cohort_size": 100, "retained": 50,
         "retention_rate": 0.5, "is_complete": True},
        {"cohort_week": "b", "week_number": 1, "cohort_size": 10, "retained": 10,
         "retention_rate": 1.0, "is_complete": True},
        {"cohort_week": "c", "week_number": 1, "cohort_size": 10, "retained": 0,
         "retention_rate": 0.0, "is_complete": False},
    ]  # fmt: skip
    assert P.retention_takeaway(rows).startswith("54.5% of new persons")  # 60/110


def test_dashboard_document_and_its_checks() -> None:
    doc = dashboard()
    assert dashboard_problems(doc) == []
    assert {p["name"] for p in doc["pages"]} == {p.id for p in P.PAGES}
    sql = "".join("".join(d["queryLines"]) for d in doc["datasets"])
    assert "behavior_gold.daily_kpis" in sql and "{" not in sql
    # incomplete days are gaps on the dashboard too
    assert "CASE WHEN is_complete THEN dau END AS dau" in sql
    bad = copy.deepcopy(doc)
    layout = bad["pages"][0]["layout"]
    layout[1]["position"]["y"] = 0  # overlaps the intro text
    chart = next(item["widget"] for item in layout if "spec" in item["widget"])
    chart["queries"][0]["query"]["datasetName"] = "nope"
    chart["spec"]["encodings"]["x"]["fieldName"] = "missing_field"
    problems = "\n".join(dashboard_problems(bad))
    assert "overlaps" in problems and "no dataset nope" in problems
    assert "encoding names missing_field" in problems


def test_interval_chart_places_points_and_intervals_around_zero() -> None:
    root = parse(
        svg.interval_chart("i", "t", ["up", "flat"], [0.4, 0.0], [0.2, -0.1], [0.6, 0.1],
                           highlight=[True, False])
    )  # fmt: skip
    dots = list(root.iter(f"{NS}circle"))
    lines = [x for x in root.iter(f"{NS}line") if x.get("class") == "interval"]
    zero = next(x for x in root.iter(f"{NS}line") if x.get("stroke-dasharray"))
    x0 = float(zero.get("x1"))
    assert float(dots[0].get("cx")) > x0 and float(dots[1].get("cx")) == pytest.approx(x0)
    assert float(lines[0].get("x1")) > x0  # an interval above zero: significant, red
    assert float(lines[1].get("x1")) < x0 < float(lines[1].get("x2"))
    assert dots[0].get("fill") == svg.PALETTE[1] and dots[1].get("fill") == svg.PALETTE[0]


def test_experiment_takeaways_name_wins_and_broken_splits() -> None:
    row = dict(experiment_id="e1", metric="conversion", relative_lift=0.12, is_significant=True,
               srm_flag=False, is_guardrail=False, analysis_date=date(2026, 2, 1))  # fmt: skip
    broken = dict(row, experiment_id="e2", srm_flag=True)
    text = P.lifts_takeaway([row, broken])
    assert "e1 conversion 12.0%" in text and "Do not trust e2" in text
    assert "no significant effect" in P.lifts_takeaway([dict(row, is_significant=False)])
    split = dict(experiment_id="e2", variation_id="treatment", n_control=100, n_variation=60,
                 srm_p_value=1e-4, srm_flag=1, excluded_persons=3)  # fmt: skip
    assert "Sample-ratio mismatch in e2" in P.splits_takeaway([split])
    assert "Every split matches" in P.splits_takeaway([dict(split, srm_flag=0)])
