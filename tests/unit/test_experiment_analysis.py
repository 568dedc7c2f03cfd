"""The experiment analysis on aggregates: the delta method for ratio metrics (against
a bootstrap and by coverage), result rows equal to scipy on the same persons, BH per
experiment and date, the sequential p-value over looks, SRM per date; and the exposure
frames (first exposure, exclusions, campaign units)."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pytest
from chispa import assert_df_equality
from scipy import stats as st

from behavior_lake.config import ExperimentMetric, ExperimentSettings
from behavior_lake.experiments import analysis
from behavior_lake.experiments.exposures import campaign_units, exposures
from behavior_lake.experiments.stats import RatioMoments, ratio_delta

RNG = np.random.default_rng(5)


def ratio_moments(y: np.ndarray, d: np.ndarray) -> RatioMoments:
    return RatioMoments(len(y), y.sum(), (y * y).sum(), d.sum(), (d * d).sum(), (y * d).sum())


def test_ratio_standard_error_matches_a_bootstrap() -> None:
    d = RNG.poisson(4, 2000).astype(float) + 1
    y = RNG.poisson(d * 3.0).astype(float)
    m = ratio_moments(y, d)
    boot = []
    for _ in range(2000):
        i = RNG.integers(0, len(y), len(y))
        boot.append(y[i].sum() / d[i].sum())
    assert np.sqrt(m.unit_var() / m.n) == pytest.approx(np.std(boot, ddof=1), rel=0.08)


def test_ratio_intervals_cover_the_true_difference() -> None:
    covered, runs = 0, 600
    for _ in range(runs):
        dc = RNG.poisson(3, 400).astype(float) + 1
        dt = RNG.poisson(3, 400).astype(float) + 1
        yc, yt = RNG.poisson(dc * 2.0), RNG.poisson(dt * 2.2)
        est = ratio_delta(ratio_moments(yc, dc), ratio_moments(yt, dt))
        covered += est.ci_low <= 0.2 <= est.ci_high
    assert 0.93 <= covered / runs <= 0.97


def _sums(exp, day, variation, metric, y, x=None, d=None):
    x = np.zeros_like(y) if x is None else x
    d = np.zeros_like(y) if d is None else d
    return dict(
        experiment_id=exp, analysis_date=day, variation_id=variation, metric=metric, n=len(y),
        sum_y=y.sum(), sum_y2=(y * y).sum(), sum_x=x.sum(), sum_x2=(x * x).sum(),
        sum_xy=(x * y).sum(), sum_d=d.sum(), sum_d2=(d * d).sum(), sum_yd=(y * d).sum(),
    )  # fmt: skip


def _cfg(**kw) -> ExperimentSettings:
    metrics = {
        "spend": ExperimentMetric(kind="mean", measure="revenue", covariate="revenue_30d"),
        "bought": ExperimentMetric(kind="proportion", measure="events"),
        "per_session": ExperimentMetric(kind="ratio", measure="events", denominator="sessions"),
    }
    return ExperimentSettings(metrics=metrics, min_units_per_variation=5, **kw)


def test_result_rows_equal_scipy_on_the_same_persons() -> None:
    days = [date(2026, 3, d) for d in (1, 2, 3)]
    sums, counts = [], []
    for i, day in enumerate(days):
        n = 200 * (i + 1)
        for variation, shift in (("control", 0.0), ("treatment", 1.0)):
            x = RNG.normal(10, 3, n)
            y = x + RNG.normal(shift, 2, n)
            b = (RNG.random(n) < 0.3 + shift * 0.05).astype(float)
            dd = RNG.poisson(3, n).astype(float) + 1
            sums += [_sums("e1", day, variation, "spend", y, x),
                     _sums("e1", day, variation, "bought", b),
                     _sums("e1", day, variation, "per_session", RNG.poisson(dd * 2.0).astype(float), d=dd)]  # fmt: skip
            counts.append(
                dict(experiment_id="e1", analysis_date=day, variation_id=variation, persons=n)
            )
            if day == days[-1] and variation == "control":
                yc, bc = y, b
            elif day == days[-1]:
                yt, bt = y, b
    rows = analysis.results(sums, counts, _cfg())
    assert len(rows) == 9 and {r["variation_id"] for r in rows} == {"treatment"}
    last = {r["metric"]: r for r in rows if r["is_latest"]}
    welch = st.ttest_ind(yt, yc, equal_var=False)
    assert last["spend"]["p_value"] == pytest.approx(welch.pvalue, rel=1e-6)
    assert last["spend"]["lift"] == pytest.approx(yt.mean() - yc.mean())
    assert last["spend"]["variance_reduction"] > 0.5  # y = x + noise: the covariate explains most
    assert last["bought"]["mean_variation"] == pytest.approx(bt.mean())
    assert last["bought"]["mean_control"] == pytest.approx(bc.mean())
    ps = [last[m]["p_value"] for m in ("spend", "bought", "per_session")]
    bh = sorted(ps)
    assert min(r["p_value_bh"] for r in last.values()) == pytest.approx(min(1.0, bh[0] * 3))
    assert last["per_session"]["cuped_lift"] is None
    for metric in ("spend", "bought", "per_session"):
        seq = [
            r["seq_p_value"]
            for r in sorted(rows, key=lambda r: r["analysis_date"])
            if r["metric"] == metric
        ]
        assert seq == sorted(seq, reverse=True)
    assert not any(r["srm_flag"] for r in rows)  # equal counts


def test_srm_is_flagged_per_date_against_the_planned_split() -> None:
    counts = [
        dict(
            experiment_id="e", analysis_date=date(2026, 1, 1), variation_id="control", persons=1000
        ),
        dict(
            experiment_id="e", analysis_date=date(2026, 1, 1), variation_id="treatment", persons=800
        ),
        dict(
            experiment_id="f", analysis_date=date(2026, 1, 1), variation_id="control", persons=600
        ),
        dict(
            experiment_id="f",
            analysis_date=date(2026, 1, 1),
            variation_id="treatment",
            persons=1200,
        ),
    ]
    out = analysis.srm_tests(counts, {"f": {"control": 1, "treatment": 2}})
    assert out[("e", date(2026, 1, 1))][0] < 1e-5  # 50/50 planned, 1000 vs 800
    assert out[("f", date(2026, 1, 1))][0] == pytest.approx(1.0)  # 1:2 planned and observed
    assert "planned control 33.3%" in out[("f", date(2026, 1, 1))][1]


def test_control_is_the_configured_variation_else_the_lowest_id() -> None:
    assert analysis.control_of(["b", "control", "a"], "control") == "control"
    assert analysis.control_of(["v2", "v1"], "control") == "v1"


def test_exposures_keep_the_first_and_exclude_persons_in_several_variations(spark) -> None:
    def ev(person, exp, variation, ts, mid):
        props = {"experiment_id": exp, "variation_id": variation, "variation_name": variation.title(),
                 "experiment_name": exp.upper()}  # fmt: skip
        return (mid, person, "experiment_viewed", datetime.fromisoformat(ts), props)

    schema = ("message_id string, person_id string, event_name string, event_ts timestamp, "
              "properties struct<experiment_id:string,variation_id:string,variation_name:string,"
              "experiment_name:string>")  # fmt: skip
    events = spark.createDataFrame(
        [
            ev("p1", "e", "treatment", "2026-01-02 10:00:00", "m2"),
            ev("p1", "e", "treatment", "2026-01-01 09:00:00", "m1"),
            ev("p2", "e", "control", "2026-01-01 08:00:00", "m3"),
            ev("p2", "e", "treatment", "2026-01-03 08:00:00", "m4"),
            ("m5", "p3", "order_completed", datetime(2026, 1, 1), None),
        ],
        schema,
    )
    got = exposures(events).select(
        "experiment_id", "person_id", "variation_id", "first_exposure_ts", "exposures",
        "variations_seen", "is_excluded", "exclusion_reason",
    )  # fmt: skip
    want = spark.createDataFrame(
        [
            ("e", "p1", "treatment", datetime(2026, 1, 1, 9), 2, 1, False, None),
            ("e", "p2", "control", datetime(2026, 1, 1, 8), 2, 2, True, "multiple_variations"),
        ],
        "experiment_id string, person_id string, variation_id string, first_exposure_ts timestamp, "
        "exposures long, variations_seen int, is_excluded boolean, exclusion_reason string",
    )
    assert_df_equality(got, want, ignore_row_order=True, ignore_nullable=True)


def test_campaign_units_take_the_first_fired_or_held_out_decision(spark) -> None:
    rows = [
        ("c", "p1", datetime(2026, 1, 2), "suppressed", "cooldown"),
        ("c", "p1", datetime(2026, 1, 3), "fired", None),
        ("c", "p2", datetime(2026, 1, 1), "suppressed", "holdout"),
        ("c", "p3", datetime(2026, 1, 1), "suppressed", "no_consent"),
    ]
    decisions = spark.createDataFrame(
        rows,
        "campaign string, person_id string, decision_ts timestamp, outcome string, reason string",
    )
    got = campaign_units(decisions).select(
        "experiment_id", "variation_id", "person_id", "exposure_ts"
    )
    want = spark.createDataFrame(
        [
            ("c", "treated", "p1", datetime(2026, 1, 3)),
            ("c", "holdout", "p2", datetime(2026, 1, 1)),
        ],
        "experiment_id string, variation_id string, person_id string, exposure_ts timestamp",
    )
    assert_df_equality(got, want, ignore_row_order=True, ignore_nullable=True)
