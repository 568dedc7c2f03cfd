"""The same landing set through bronze, silver and gold on each engine: identical tables."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from behavior_lake.bronze.ingest import ingest
from behavior_lake.gold.build import build_features, build_reports
from behavior_lake.insights.site import build_site
from behavior_lake.lake import make_lake
from behavior_lake.silver.build import build_silver
from tests.integration.conftest import Demo
from tests.integration.parity import comparable, table_differences

pytestmark = [pytest.mark.slow, pytest.mark.e2e]  # a whole pipeline per engine: make test-e2e


def test_both_engines_give_identical_tables_row_for_row(
    spark: SparkSession, demo: Demo, default_engine: str, tmp_path: Path
) -> None:
    if default_engine != "delta-spark":
        pytest.skip("one engine only: the Delta jars are not cached (`make jars`)")
    s = demo.settings
    s = replace(s, lake=replace(s.lake, root=str(tmp_path / "rs"), engine="delta-rs"))
    rs = make_lake(spark, s.lake.root, "delta-rs", demo.lake.specs)
    ingest(rs, s, demo.taxonomy, "parity-bronze")
    build_silver(rs, s, demo.taxonomy, "parity-silver")
    build_features(rs, s, demo.taxonomy, demo.as_of_dates)
    assert demo.lake.engine == "delta-spark" and rs.engine == "delta-rs"
    assert rs.read("silver.events").count() == demo.lake.read("silver.events").count() > 1000
    assert table_differences(demo.lake, rs, s.privacy.encryption_key) == {}
    # the reporting tables and the insights site too: the same takeaways on both engines
    for lake in (demo.lake, rs):
        build_reports(lake, s, demo.taxonomy)
    sites = [build_site(lake, tmp_path / lake.engine) for lake in (demo.lake, rs)]
    assert sites[0]["without_data"] == sites[1]["without_data"]
    for page in ("activity", "retention", "funnels", "quality"):
        spark_page, rs_page = (takeaways(Path(x["out"]) / f"{page}.html") for x in sites)
        assert spark_page == rs_page and len(spark_page) >= 2, page


def takeaways(page: Path) -> list[str]:
    return re.findall(r'<p class="takeaway">(.*?)</p>', page.read_text())


def test_comparison_sees_one_changed_value(demo: Demo) -> None:
    """Positive control for the comparison above: one changed cell is a difference."""
    df = comparable(demo.lake.read("silver.sessions"))
    first = df.orderBy("session_id").first()
    changed = df.withColumn(
        "event_count",
        F.when(F.col("session_id") == first["session_id"], F.col("event_count") + 1).otherwise(
            F.col("event_count")
        ),
    )
    assert df.exceptAll(changed).count() == 1 and changed.exceptAll(df).count() == 1
    assert df.exceptAll(df).count() == 0
