"""A small generated lake shared by the gold and model tests (built once per session)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from behavior_lake.bronze.ingest import ingest
from behavior_lake.catalog import resolve
from behavior_lake.config import Settings
from behavior_lake.contracts.taxonomy import Taxonomy, load_taxonomy
from behavior_lake.generator.generate import generate
from behavior_lake.gold.build import build_features, resolve_as_of
from behavior_lake.lake import Lake, make_lake
from behavior_lake.ml import tracking
from behavior_lake.silver.build import SilverStats, build_silver
from tests.conftest import CONF, lake_test_settings

DEMO_USERS = 120
DEMO_DAYS = 42


# Strong (non-development) privacy keys, so that the same lake can be rebuilt by a job
# under --env cluster (which refuses the development keys) and compared. Test-only.
TEST_PSEUDONYM_KEY = "3f9c2b7e1d8a4c6f0b5e9d2a7c1f8e4b6a0d3c9f2e7b1a5d8c4f0e6b9a2d7c3e"
TEST_ENCRYPTION_KEY = "8e1f4a7c2d9b6e3f0a5c8d1b4e7f2a9c6d3b0e5f8a1c4d7b2e9f6a3c0d5b8e1f"
KEY_OVERRIDES = [
    f"privacy.pseudonym_key={TEST_PSEUDONYM_KEY}",
    f"privacy.encryption_key={TEST_ENCRYPTION_KEY}",
]

# Small, fast model settings for tests (the production defaults live in conf/base/ml.yml)
FAST_ML = [
    "segments.k_min=3",
    "segments.k_max=4",
    "segments.bootstrap_rounds=1",
    "segments.max_iter=15",
    "churn.horizon_days=14",  # the demo covers 6 weeks: 30 days would leave no complete cutoff
    "churn.gbt_max_iter=10",
    "churn.max_cutoffs=4",
]


@dataclass
class Demo:
    settings: Settings
    lake: Lake
    taxonomy: Taxonomy
    first_day: date
    last_day: date  # last generated day
    as_of_dates: list[date]
    tmp: Path
    silver_stats: SilverStats

    def overrides(self) -> list[str]:
        """--conf values that point a job at this lake and MLflow store."""
        s = self.settings
        return [
            f"lake.root={s.lake.root}",
            f"landing.root={s.landing.root}",
            f"landing.truth_root={s.landing.truth_root}",
            f"mlflow.tracking_uri={s.mlflow.tracking_uri}",
            f"mlflow.artifact_root={s.mlflow.artifact_root}",
            f"lake.deletion_vectors={str(s.lake.deletion_vectors).lower()}",
            "spark.master=local[2]",
            *KEY_OVERRIDES,
            *FAST_ML,
        ]

    def job_args(self, *extra: str) -> list[str]:
        out: list[str] = []
        for o in self.overrides():
            out += ["--conf", o]
        return [*out, *extra]


@pytest.fixture(scope="session")
def demo(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory, default_engine: str
) -> Demo:
    """Generator -> bronze -> silver -> gold over DEMO_USERS persons and DEMO_DAYS days,
    on the default engine. On delta-spark its tables have deletion vectors, so erasure
    and retention go through the purge path."""
    tmp = tmp_path_factory.mktemp("demo")
    s = lake_test_settings(
        tmp / "lakehouse",
        f"lake.deletion_vectors={'true' if default_engine == 'delta-spark' else 'false'}",
        f"landing.root={tmp / 'landing'}",
        f"landing.truth_root={tmp / 'truth'}",
        f"mlflow.tracking_uri=sqlite:///{tmp / 'mlruns' / 'mlflow.db'}",
        f"mlflow.artifact_root={tmp / 'mlruns' / 'artifacts'}",
        *KEY_OVERRIDES,
        *FAST_ML,
    )
    s = replace(s, generator=replace(s.generator, users=DEMO_USERS, days=DEMO_DAYS, partitions=2))
    generate(spark, s.generator, s.landing.root, s.landing.truth_root)
    lake = make_lake(
        spark, s.lake.root, default_engine, resolve(s), deletion_vectors=s.lake.deletion_vectors
    )
    tax = load_taxonomy(CONF)
    ingest(lake, s, tax, "demo-bronze")
    silver_stats = build_silver(lake, s, tax, "demo-silver")
    first = date.fromisoformat(s.generator.start_date)
    last = first + timedelta(days=DEMO_DAYS - 1)
    # weekly gold feature snapshots from day 14 to "now" (the day after the last day)
    dates = resolve_as_of(lake, s, start=first + timedelta(days=14), end=last + timedelta(days=1))
    build_features(lake, s, tax, dates)
    return Demo(s, lake, tax, first, last, dates, tmp, silver_stats)


@pytest.fixture(scope="session")
def modeled(demo: Demo) -> Demo:
    """The demo lake with its reporting and experiment tables and both champions (trained and scored
    here when the tests that build them did not run first)."""
    from behavior_lake.jobs import (
        assign_segments,
        gold_experiments,
        gold_kpis,
        score_churn,
        train_churn,
        train_segments,
    )

    s = demo.settings
    if not demo.lake.exists("gold.retention_cohorts"):
        assert gold_kpis.cli(demo.job_args()) == 0
    if not demo.lake.exists("gold.experiment_results"):
        assert gold_experiments.cli(demo.job_args()) == 0
    for model, exp, train, score in (
        (s.segments.model_name, s.mlflow.segments_experiment, train_segments, assign_segments),
        (s.churn.model_name, s.mlflow.churn_experiment, train_churn, score_churn),
    ):
        tracking.configure(s.mlflow, exp)
        try:
            tracking.version_by_alias(model, "champion")
        except tracking.ModelNotFoundError:
            low = [
                "--conf",
                "segments.gate.min_silhouette=0",
                "--conf",
                "segments.gate.min_stability_ari=0",
            ]
            assert train.cli(demo.job_args(*low)) == 0
        if not demo.lake.exists(
            "gold.user_segments" if score is assign_segments else "gold.churn_scores"
        ):
            assert score.cli(demo.job_args()) == 0
    return demo


def pytest_collection_modifyitems(config, items) -> None:
    """Tests that change the shared demo lake (erasure deletes a subject, a late file
    lands) run after every test that only reads it."""
    items.sort(key=lambda item: item.module.__name__.endswith("test_governance"))
