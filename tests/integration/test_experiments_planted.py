"""The planted experiments recovered on generated data large enough to see them
(1,500 persons, 35 days, experiments from day 7): generator -> bronze -> silver ->
gold features -> gold_experiments. The true relative lifts (truth written beside the
landing files) lie in the reported intervals; the large effects are significant; the
experiment without an effect is not; the broken split, and only it, is flagged.
About 4 minutes: marker e2e (make test-e2e, run by CI after make test)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from behavior_lake.bronze.ingest import ingest
from behavior_lake.catalog import resolve
from behavior_lake.contracts.experiments import ALERTS, RESULTS
from behavior_lake.contracts.taxonomy import load_taxonomy
from behavior_lake.experiments import plan as P
from behavior_lake.generator.generate import generate
from behavior_lake.gold.build import build_features, resolve_as_of
from behavior_lake.jobs import gold_experiments
from behavior_lake.lake import make_lake
from behavior_lake.silver.build import build_silver
from tests.conftest import CONF, lake_test_settings
from tests.integration.conftest import KEY_OVERRIDES

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
USERS, DAYS, START_DAY = 1500, 35, 7


@pytest.fixture(scope="module")
def planted(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory, default_engine: str):
    tmp = tmp_path_factory.mktemp("planted")
    s = lake_test_settings(
        tmp / "lakehouse",
        f"landing.root={tmp / 'landing'}",
        f"landing.truth_root={tmp / 'truth'}",
        *KEY_OVERRIDES,
    )
    g = s.generator
    exps = [replace(e, start_day=START_DAY) for e in g.experiments]
    g = replace(g, users=USERS, days=DAYS, partitions=2, experiments=exps)
    s = replace(s, generator=g)
    generate(spark, g, s.landing.root, s.landing.truth_root)
    lake = make_lake(spark, s.lake.root, default_engine, resolve(s), deletion_vectors=False)
    tax = load_taxonomy(CONF)
    ingest(lake, s, tax, "planted-bronze")
    build_silver(lake, s, tax, "planted-silver")
    first = date.fromisoformat(g.start_date)
    dates = resolve_as_of(
        lake, s, start=first + timedelta(days=7), end=first + timedelta(days=DAYS)
    )
    build_features(lake, s, tax, dates)
    args = []
    for o in (f"lake.root={s.lake.root}", f"landing.root={s.landing.root}", *KEY_OVERRIDES):
        args += ["--conf", o]
    assert gold_experiments.cli(args) == 0
    truth = json.loads(
        (Path(s.landing.truth_root) / "experiments" / "experiments.json").read_text()
    )
    latest = lake.read(RESULTS.name).filter("is_latest").toPandas()
    return {e["experiment_id"]: e for e in truth["experiments"]}, latest, lake


def test_true_lifts_lie_in_the_intervals(planted) -> None:
    """Each planted effect's main metric: the true lift is in the interval. Over every
    (experiment, metric) with a known truth, at most one 95% interval may miss."""
    truth, res, _ = planted
    misses: list[tuple[str, str]] = []
    checked = 0
    for exp, t in truth.items():
        if t["srm_expected"]:
            continue  # a broken split is not to be read
        lifts = t["expected_relative_lift"]
        main = max(lifts, key=lambda m: abs(lifts[m]))
        for metric, expected in lifts.items():
            row = res[(res["experiment_id"] == exp) & (res["metric"] == metric)].iloc[0]
            inside = row["relative_ci_low"] <= expected <= row["relative_ci_high"]
            assert inside or metric != main or not t["effects"], (exp, metric, row["relative_lift"])
            misses += [] if inside else [(exp, metric)]
            checked += 1
    assert checked >= 9 and len(misses) <= 1, misses


def test_large_effects_are_found_and_the_null_experiment_is_not(planted) -> None:
    truth, res, _ = planted
    found = 0
    for exp, t in truth.items():
        rows = res[res["experiment_id"] == exp].set_index("metric")
        if t["effects"]:
            lifts = t["expected_relative_lift"]
            metric = max(lifts, key=lambda m: abs(lifts[m]))
            found += bool(rows.loc[metric, "is_significant"])
            # CUPED narrows the interval: the pre-period predicts the outcome
            assert rows.loc[metric, "variance_reduction"] > 0.05, (exp, metric)
        elif not t["srm_expected"]:
            assert not rows["is_significant"].any(), exp
            assert not rows["seq_significant"].any(), exp
    assert found >= 2


def test_the_broken_split_and_only_it_is_flagged(planted) -> None:
    truth, res, lake = planted
    flagged = set(res[res["srm_flag"]]["experiment_id"])
    assert flagged == {e for e, t in truth.items() if t["srm_expected"]}
    alerts = lake.read(ALERTS.name).toPandas()
    assert set(alerts["experiment_id"]) == flagged
    assert (alerts["p_value"] < alerts["threshold"]).all()


def test_plan_experiment_takes_baseline_and_traffic_from_the_lake(planted, capsys) -> None:
    _, res, lake = planted
    row = res[(res["experiment_id"] == "home_feed") & (res["metric"] == "sessions_per_user")].iloc[
        0
    ]
    assert (
        P.main(
            ["--from-lake", "home_feed:sessions_per_user", "--lake-root", lake.root, "--mde", "0.5"]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["observed"]["baseline"] == pytest.approx(row["mean_control"])
    want = P.sample_size("mean", row["mean_control"], 0.5, sd=row["var_control"] ** 0.5)
    assert out["sample_size_per_variant"] == want
    assert out["sample_size_per_variant_cuped"] < want  # the measured CUPED reduction
    assert out["days"] >= 1
    # a metric the lake does not hold is refused, naming what it holds
    assert P.main(["--from-lake", "home_feed:nope", "--lake-root", lake.root, "--mde", "1"]) == 2
    assert "known:" in capsys.readouterr().err
