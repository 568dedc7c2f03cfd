"""gold_experiments on the generated demo lake: exposures against the planted
assignment, results recomputed independently from silver, campaign lift from the
activation rules replayed over silver (holdouts included)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import functions as F
from scipy import stats as st

from behavior_lake.activation.stream import replay
from behavior_lake.contracts.activation import DECISIONS
from behavior_lake.contracts.experiments import ALERTS, CAMPAIGN_LIFT, EXPOSURES, RESULTS
from behavior_lake.contracts.silver import EVENTS, SESSIONS
from behavior_lake.jobs import gold_experiments
from behavior_lake.privacy.pseudonym import user_person_id
from tests.integration.conftest import TEST_PSEUDONYM_KEY, Demo


@pytest.fixture(scope="module")
def analysed(demo: Demo) -> Demo:
    """The demo lake with activation decisions (rules replayed over silver, every
    campaign holding out half its persons) and the experiment tables."""
    s = demo.settings
    rules = [replace(r, holdout_share=0.5) for r in s.activation.rules]
    act = replace(s, activation=replace(s.activation, rules=rules))
    decisions = replay(demo.lake, act, demo.lake.read(EVENTS))
    demo.lake.overwrite(DECISIONS.name, decisions.select(*DECISIONS.schema.fieldNames()))
    args = demo.job_args("--conf", "experiments.min_units_per_variation=5")
    assert gold_experiments.cli(args) == 0
    return demo


def _truth_assignments(demo: Demo) -> pd.DataFrame:
    """person_id, experiment_id, variation, cross from the generator's truth."""
    spark = demo.lake.spark
    users = Path(demo.settings.landing.truth_root) / "users" / "users.jsonl"
    rows = []
    for line in users.read_text().splitlines():
        person = json.loads(line)
        for exp, seen in (person.get("experiments") or {}).items():
            rows.append((person["user_id"], exp, seen["variation"], bool(seen["cross"])))
    df = spark.createDataFrame(
        rows, "user_id string, experiment_id string, variation string, cross boolean"
    )
    return df.select(
        user_person_id(F.col("user_id"), TEST_PSEUDONYM_KEY).alias("person_id"),
        "experiment_id",
        "variation",
        "cross",
    ).toPandas()


def test_exposures_follow_the_planted_assignment(analysed: Demo) -> None:
    expo = analysed.lake.read(EXPOSURES.name).toPandas()
    truth = _truth_assignments(analysed)
    assert len(expo) > 0
    assert not expo.duplicated(["experiment_id", "person_id"]).any()
    assert set(expo["experiment_id"]) == {e.id for e in analysed.settings.generator.experiments}
    joined = expo.merge(truth, on=["person_id", "experiment_id"], how="left")
    # persons who never sign in keep a device-based id that truth cannot name
    assert joined["variation"].notna().mean() > 0.7
    joined = joined[joined["variation"].notna()]
    kept = joined[~joined["is_excluded"]]
    # the first exposure shows the planted variation
    assert (kept["variation_id"] == kept["variation"]).all()
    excluded = joined[joined["is_excluded"]]
    assert len(excluded) > 0, "the generator plants cross-variation exposures"
    assert excluded["cross"].all() and (excluded["variations_seen"] > 1).all()
    assert (excluded["exclusion_reason"] == "multiple_variations").all()


def test_results_equal_an_independent_computation_from_silver(analysed: Demo) -> None:
    """sessions_per_user (Welch) and conversion (two-proportion z) of one experiment at
    its last analysis date, recomputed per person from silver with pandas and scipy."""
    lake = analysed.lake
    res = lake.read(RESULTS.name).filter("is_latest").toPandas()
    exp = "home_feed"
    units = (
        lake.read(EXPOSURES.name).filter(f"experiment_id = '{exp}' AND NOT is_excluded").toPandas()
    )
    end = res["analysis_date"].max()
    window = analysed.settings.experiments.window_days
    sessions = lake.read(SESSIONS.name).select("person_id", "session_start_ts").toPandas()
    orders = (
        lake.read(EVENTS)
        .filter("event_name = 'order_completed'")
        .select("person_id", "event_ts")
        .toPandas()
    )
    limit = pd.Timestamp(end) + timedelta(days=1)

    def count(frame: pd.DataFrame, col: str) -> pd.Series:
        m = units.merge(frame, on="person_id", how="left")
        hit = (
            (m[col] >= m["first_exposure_ts"])
            & (m[col] < m["first_exposure_ts"] + pd.Timedelta(days=window))
            & (m[col] < limit)
        )
        return hit.groupby(m["person_id"]).sum().reindex(units["person_id"]).fillna(0).to_numpy()

    units["sessions"] = count(sessions, "session_start_ts")
    units["orders"] = count(orders, "event_ts")
    c = units[units["variation_id"] == "control"]
    t = units[units["variation_id"] == "treatment"]
    row = res[(res["experiment_id"] == exp) & (res["metric"] == "sessions_per_user")].iloc[0]
    assert (row["n_control"], row["n_variation"]) == (len(c), len(t))
    assert row["lift"] == pytest.approx(t["sessions"].mean() - c["sessions"].mean(), rel=1e-9)
    welch = st.ttest_ind(t["sessions"], c["sessions"], equal_var=False)
    assert row["p_value"] == pytest.approx(welch.pvalue, rel=1e-6)
    row = res[(res["experiment_id"] == exp) & (res["metric"] == "conversion")].iloc[0]
    pc, pt = (c["orders"] > 0).mean(), (t["orders"] > 0).mean()
    assert row["mean_control"] == pytest.approx(pc) and row["mean_variation"] == pytest.approx(pt)
    pool = ((c["orders"] > 0).sum() + (t["orders"] > 0).sum()) / (len(c) + len(t))
    z = (pt - pc) / (pool * (1 - pool) * (1 / len(c) + 1 / len(t))) ** 0.5
    assert row["p_value"] == pytest.approx(2 * st.norm.sf(abs(z)), rel=1e-6)


def test_result_rows_are_consistent(analysed: Demo) -> None:
    cfg = analysed.settings.experiments
    res = analysed.lake.read(RESULTS.name).toPandas()
    assert set(res["metric"]) == set(cfg.metrics)
    assert (res["lift_ci_low"] <= res["lift"]).all() and (res["lift"] <= res["lift_ci_high"]).all()
    assert (res["p_value_bh"] >= res["p_value"] - 1e-12).all()
    assert (res["is_significant"] == (res["p_value_bh"] < cfg.alpha)).all()
    assert (res["srm_flag"] == (res["srm_p_value"] < cfg.srm_alpha)).all()
    # always valid: the sequential p-value never rises from one analysis date to the next
    for _, series in res.sort_values("analysis_date").groupby(
        ["experiment_id", "metric", "variation_id"]
    ):
        assert series["seq_p_value"].is_monotonic_decreasing
    # CUPED where a covariate is configured, never on the ratio guardrail
    covs = res[res["covariate"].notna()]
    assert covs["cuped_lift"].notna().all() and covs["variance_reduction"].notna().all()
    assert res[res["metric_kind"] == "ratio"]["cuped_lift"].isna().all()
    # retention_d7 counts persons whose days 7-13 are over by the analysis date only
    units = (
        analysed.lake.read(EXPOSURES.name)
        .filter("experiment_id = 'button_colour' AND NOT is_excluded")
        .toPandas()
    )
    exp = res[res["experiment_id"] == "button_colour"]
    ret = exp[exp["metric"] == "retention_d7"]
    assert len(ret) > 0
    for _, row in ret.iterrows():
        done = units["first_exposure_date"] <= row["analysis_date"] - timedelta(days=14)
        assert row["n_control"] + row["n_variation"] == done.sum()
    first = units["first_exposure_date"].min()
    early = exp[exp["analysis_date"] < first + timedelta(days=14)]
    assert (early["metric"] == "sessions_per_user").any()
    assert not (early["metric"] == "retention_d7").any()
    alerts = analysed.lake.read(ALERTS.name).toPandas()
    flagged = res[res["srm_flag"]][["experiment_id", "analysis_date"]].drop_duplicates()
    assert len(alerts) == len(flagged)


def test_campaign_lift_compares_treated_with_holdout(analysed: Demo) -> None:
    lake = analysed.lake
    lift = lake.read(CAMPAIGN_LIFT.name).filter("is_latest").toPandas()
    assert len(lift) > 0
    campaign = lift.sort_values("n_control").iloc[-1]
    dec = (
        lake.read(DECISIONS.name)
        .filter(f"campaign = '{campaign['campaign']}'")
        .filter("outcome = 'fired' OR reason = 'holdout'")
        .toPandas()
        .sort_values("decision_ts")
        .drop_duplicates("person_id")
    )
    orders = (
        lake.read(EVENTS)
        .filter("event_name = 'order_completed'")
        .select("person_id", "event_ts")
        .toPandas()
    )
    days = analysed.settings.experiments.campaign_window_days
    limit = pd.Timestamp(campaign["analysis_date"]) + timedelta(days=1)
    m = dec.merge(orders, on="person_id", how="left")
    hit = (m["event_ts"] >= m["decision_ts"]) & (
        m["event_ts"] < m["decision_ts"] + pd.Timedelta(days=days)
    )
    hit &= m["event_ts"] < limit
    converted = hit.groupby(m["person_id"]).any()
    dec["converted"] = dec["person_id"].map(converted)
    held = dec[dec["outcome"] == "suppressed"]
    treated = dec[dec["outcome"] == "fired"]
    assert (campaign["n_control"], campaign["n_variation"]) == (len(held), len(treated))
    assert campaign["mean_control"] == pytest.approx(held["converted"].mean())
    assert campaign["mean_variation"] == pytest.approx(treated["converted"].mean())
    assert campaign["metric"] == "conversion"


def test_rerun_is_idempotent(analysed: Demo) -> None:
    before = analysed.lake.read(RESULTS.name).drop("computed_at")
    n = before.count()
    assert (
        gold_experiments.cli(analysed.job_args("--conf", "experiments.min_units_per_variation=5"))
        == 0
    )
    after = analysed.lake.read(RESULTS.name).drop("computed_at")
    assert after.count() == n
    assert before.exceptAll(after).count() == 0
