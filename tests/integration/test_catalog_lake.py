"""Tables by name (lake.catalog: catalog.schema.table, Unity Catalog's addressing) give
the same tables as tables by path; exercised against Spark's session catalog."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from behavior_lake.bronze.ingest import ingest
from behavior_lake.config import ConfigError
from behavior_lake.gold.build import build_features
from behavior_lake.lake import LakeError, Where, make_lake
from behavior_lake.silver.build import build_silver
from tests.conftest import lake_test_settings
from tests.integration.conftest import Demo
from tests.integration.parity import table_differences


@pytest.mark.e2e
def test_tables_by_name_equal_tables_by_path(
    spark: SparkSession, demo: Demo, default_engine: str, tmp_path: Path
) -> None:
    if default_engine != "delta-spark":
        pytest.skip("tables by name need delta-spark: the Delta jars are not cached")
    root = tmp_path / "lake"
    s = demo.settings
    s = replace(
        s,
        lake=replace(s.lake, root=str(root), catalog="spark_catalog", schema_prefix="uc_"),
    )
    lake = make_lake(
        spark, s.lake.root, "delta-spark", demo.lake.specs, catalog="spark_catalog",
        schema_prefix="uc_",
    )  # fmt: skip
    ingest(lake, s, demo.taxonomy, "uc-bronze")
    build_silver(lake, s, demo.taxonomy, "uc-silver")
    build_features(lake, s, demo.taxonomy, demo.as_of_dates)
    # registered in the catalog, stored where the catalog keeps managed tables
    assert spark.catalog.tableExists("spark_catalog.uc_silver.events")
    assert lake.table_name("silver.events") == "`spark_catalog`.`uc_silver`.`events`"
    assert "warehouse" in lake.path("silver.events")
    assert not (root / "silver").exists()  # nothing written by path
    assert table_differences(demo.lake, lake, s.privacy.encryption_key) == {}
    # the maintenance path by name: delete, purge, vacuum, history, time travel
    before = lake.version("silver.sessions")
    day = demo.as_of_dates[0]
    res = lake.delete("silver.sessions", Where.lt("session_date", day))
    assert res.rows_deleted > 0 and res.extra["metadata_only"] is True
    lake.vacuum("silver.sessions", retention_hours=0)
    assert lake.read("silver.sessions", version=before).count() == (
        demo.lake.read("silver.sessions").count()
    )
    assert "DELETE" in [h["operation"] for h in lake.history("silver.sessions", 5)]
    # positive control: the same comparison sees the deleted rows
    assert "silver.sessions" in table_differences(
        demo.lake, lake, s.privacy.encryption_key, tables=("silver.sessions",)
    )


def test_tables_by_name_need_delta_spark(spark: SparkSession, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"lake\.catalog: tables by name need the delta-spark"):
        lake_test_settings(tmp_path, "lake.catalog=main", "lake.engine=delta-rs")
    with pytest.raises(ConfigError, match=r"lake\.schema_prefix: expected letters"):
        lake_test_settings(tmp_path, "lake.catalog=main", "lake.schema_prefix=a-b")
    with pytest.raises(LakeError, match="tables by name need delta-spark"):
        make_lake(spark, str(tmp_path), "delta-rs", {}, catalog="main")
