"""The insights report over the demo lake (after the model tests: scores and segments
exist): the job writes the site, the numbers trace back to the tables, incomplete days
are shaded, and a real headless browser (Debian's chromium) loads every page with no
console error, renders every chart and leaves a screenshot of each page."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from behavior_lake.insights import panels as P
from behavior_lake.insights.lakeview import dashboard, dashboard_problems, dataset_sql
from behavior_lake.insights.site import view_name
from tests.integration.conftest import Demo

pytestmark = pytest.mark.slow
SCREENSHOTS = Path(__file__).resolve().parents[2] / "reports" / "screenshots"
MARKS = "rect.bar, polyline.series, rect.cell, circle"


@pytest.fixture(scope="module")
def site(modeled: Demo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from behavior_lake.jobs import build_report

    demo = modeled
    out = tmp_path_factory.mktemp("insights")
    assert build_report.cli(demo.job_args("--output", str(out))) == 0
    return out


def test_every_page_and_panel_is_written(site: Path, demo: Demo) -> None:
    pages = {p.name for p in site.glob("*.html")}
    assert pages == {"index.html", *[f"{p.id}.html" for p in P.PAGES]}
    for page in P.PAGES:
        html = (site / f"{page.id}.html").read_text()
        for panel in page.panels:
            assert f'<section id="{panel.id}">' in html
    # the demo lake has scores and segments (model tests ran): their charts are drawn;
    # no pipeline run wrote ops.sla_breaches, and the page says so instead of failing
    charts = {m for p in P.PAGES for m in re.findall(r'data-chart="([a-z_]+)"',
                                                        (site / f"{p.id}.html").read_text())}  # fmt: skip
    assert {"churn_deciles", "churn_segments", "segment_shares", "retention_heatmap",
            "active_persons", "funnel_steps", "quarantine", "experiment_lifts",
            "experiment_splits"} <= charts  # fmt: skip
    quality = (site / "quality.html").read_text()
    assert "ops.sla_breaches does not exist yet" in quality
    assert "Experiments" in (site / "index.html").read_text()


def test_numbers_trace_to_the_tables_and_incomplete_days_are_shaded(site: Path, demo: Demo) -> None:
    kpis = demo.lake.read("gold.daily_kpis").filter(F.col("platform") == "all")
    incomplete = kpis.filter(~F.col("is_complete")).count()
    assert incomplete == 1  # the last day of the data is still filling up
    html = (site / "activity.html").read_text()
    chart = html.split('data-chart="active_persons"')[1].split("</svg>")[0]
    assert chart.count('class="shade"') == incomplete
    # the takeaway's average DAU over the last 7 complete days, from the table itself
    done = kpis.filter("is_complete").orderBy(F.desc("kpi_date")).limit(7)
    mean = done.agg(F.avg("dau")).first()[0]
    assert f"averaged {P._num(mean)} over the last 7 complete days" in html
    # the data table names the table and its Delta version
    assert f"gold.daily_kpis (version {demo.lake.version('gold.daily_kpis')})" in html
    # churn: persons and capacity in the report = the table
    latest = demo.lake.read("gold.churn_scores").agg(F.max("as_of_date")).first()[0]
    scores = demo.lake.read("gold.churn_scores").filter(F.col("as_of_date") == latest)
    churn = (site / "churn.html").read_text()
    assert f"{P._num(scores.count())} active persons were scored" in churn
    assert f"The {P._num(scores.filter('in_capacity').count())} persons within contact" in churn


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, (
        "the browser test needs Debian's chromium and its driver: "
        "apt-get install chromium chromium-driver (make test installs them as root)"
    )
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1200,1600", "--remote-debugging-address=127.0.0.1"):  # fmt: skip
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=driver), options=opts)


@pytest.fixture(scope="module")
def browser():
    drv = _browser()
    yield drv
    drv.quit()


def _severe(drv) -> list[str]:
    return [e["message"] for e in drv.get_log("browser") if e["level"] == "SEVERE"]


def test_the_console_check_catches_an_error(browser, tmp_path: Path) -> None:
    """Positive control: a page with a script error is reported."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!doctype html><html><body><script>undefinedFunction()</script></body></html>")
    browser.get(bad.as_uri())
    assert any("undefinedFunction" in m for m in _severe(browser))


def test_pages_load_without_errors_and_every_chart_renders(browser, site: Path) -> None:
    from selenium.webdriver.common.by import By

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for page in ["index", *[p.id for p in P.PAGES]]:
        browser.get((site / f"{page}.html").as_uri())
        assert browser.title.endswith("behavior-lake insights")
        assert _severe(browser) == [], page
        charts = browser.find_elements(By.CSS_SELECTOR, "svg.chart")
        for chart in charts:
            size = chart.size
            assert size["width"] > 100 and size["height"] > 40, chart.get_attribute("data-chart")
            assert chart.find_elements(By.CSS_SELECTOR, MARKS), chart.get_attribute("data-chart")
        if page != "index":
            assert charts or page == "quality", page
        shot = SCREENSHOTS / f"{page}.png"
        browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
    print(f"screenshots: {SCREENSHOTS}")


def test_dashboard_queries_run_on_the_lake(demo: Demo) -> None:
    """The AI/BI dashboard's datasets are the report's queries: each runs on the demo
    lake (tables as views) and returns every column its widget encodes."""
    doc = dashboard("")
    assert dashboard_problems(doc) == []
    spark = demo.lake.spark
    for page in P.PAGES:
        for panel in page.panels:
            tables = panel.dataset.tables
            if not all(demo.lake.exists(t) for t in tables):
                continue
            for t in tables:
                demo.lake.read(t).createOrReplaceTempView(view_name(t))
            _, sql = dataset_sql(panel, "")
            for t in tables:
                sql = sql.replace(t, view_name(t))
            cols = set(spark.sql(sql).columns)
            w = panel.widget
            assert {w.x, *w.y, *([w.color] if w.color else [])} <= cols, panel.id
