"""A small generated lake shared by the gold and model tests (built once per session)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta

import pytest
from pyspark.sql import SparkSession

from behavior_lake.bronze.ingest import ingest
from behavior_lake.config import Settings
from behavior_lake.contracts.taxonomy import Taxonomy, load_taxonomy
from behavior_lake.generator.generate import generate
from behavior_lake.lake import Lake, make_lake
from behavior_lake.silver.build import build_silver
from tests.conftest import CONF, lake_test_settings

DEMO_USERS = 160
DEMO_DAYS = 42


@dataclass
class Demo:
    settings: Settings
    lake: Lake
    taxonomy: Taxonomy
    first_day: date
    last_day: date  # last generated day


@pytest.fixture(scope="session")
def demo(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """Generator -> bronze -> silver over DEMO_USERS persons and DEMO_DAYS days."""
    from behavior_lake.contracts.tables import TABLES

    tmp = tmp_path_factory.mktemp("demo")
    s = lake_test_settings(
        tmp / "lakehouse", f"landing.root={tmp / 'landing'}", f"landing.truth_root={tmp / 'truth'}"
    )
    s = replace(s, generator=replace(s.generator, users=DEMO_USERS, days=DEMO_DAYS, partitions=2))
    generate(spark, s.generator, s.landing.root, s.landing.truth_root)
    lake = make_lake(spark, s.lake.root, "delta-rs", TABLES)
    tax = load_taxonomy(CONF)
    ingest(lake, s, tax, "demo-bronze")
    build_silver(lake, s, tax, "demo-silver")
    first = date.fromisoformat(s.generator.start_date)
    return Demo(s, lake, tax, first, first + timedelta(days=DEMO_DAYS - 1))
