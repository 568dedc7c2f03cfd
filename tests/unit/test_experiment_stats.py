"""Experiment statistics: equal to scipy/statsmodels on the same data; coverage, false
positives and CUPED's variance reduction measured on simulated experiments."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as st
from statsmodels.stats import multitest
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from behavior_lake.experiments import plan as P
from behavior_lake.experiments.simulate import simulate
from behavior_lake.experiments.stats import (
    CovMoments,
    Moments,
    benjamini_hochberg,
    cuped,
    msprt,
    proportions,
    sequential_path,
    srm,
    welch,
)

RNG = np.random.default_rng(11)


def moments(a: np.ndarray) -> Moments:
    return Moments.from_sums(len(a), float(a.sum()), float((a * a).sum()))


def test_welch_equals_scipy_and_statsmodels() -> None:
    c = RNG.normal(10.0, 3.0, 800)
    t = RNG.normal(10.4, 4.0, 650)
    got = welch(moments(c), moments(t))
    ref = st.ttest_ind(t, c, equal_var=False)
    assert got.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert got.diff == pytest.approx(t.mean() - c.mean(), rel=1e-12)
    low, high = CompareMeans(DescrStatsW(t), DescrStatsW(c)).tconfint_diff(usevar="unequal")
    assert (got.ci_low, got.ci_high) == (
        pytest.approx(low, rel=1e-9),
        pytest.approx(high, rel=1e-9),
    )


def test_two_proportions_equal_statsmodels() -> None:
    got = proportions(480, 5000, 560, 5100)
    _, p = proportions_ztest([560, 480], [5100, 5000])
    assert got.p_value == pytest.approx(p, rel=1e-9)
    low, high = confint_proportions_2indep(560, 5100, 480, 5000, method="wald", compare="diff")
    assert (got.ci_low, got.ci_high) == (
        pytest.approx(low, rel=1e-9),
        pytest.approx(high, rel=1e-9),
    )
    assert got.relative == pytest.approx((560 / 5100) / (480 / 5000) - 1)


def test_srm_equals_scipy_chisquare_and_flags_a_broken_split() -> None:
    stat, p = srm([5000, 5210], [0.5, 0.5])
    ref = st.chisquare([5000, 5210])
    assert (stat, p) == (pytest.approx(ref.statistic), pytest.approx(ref.pvalue))
    assert srm([5000, 5600], [0.5, 0.5])[1] < 0.001  # a broken split
    assert srm([5000, 5020], [0.5, 0.5])[1] > 0.5  # a fair one


def test_benjamini_hochberg_equals_statsmodels() -> None:
    p = [0.001, 0.04, 0.03, 0.2, 0.011, 0.5]
    assert benjamini_hochberg(p) == pytest.approx(
        list(multitest.multipletests(p, method="fdr_bh")[1])
    )
    assert benjamini_hochberg(p) == pytest.approx(list(st.false_discovery_control(p)))


def test_cuped_equals_the_adjusted_outcome_test_and_cuts_variance() -> None:
    n, rho = 3000, 0.7
    x = RNG.standard_normal(2 * n)
    y = (
        0.05 * (np.arange(2 * n) >= n)
        + rho * x
        + math.sqrt(1 - rho * rho) * RNG.standard_normal(2 * n)
    )
    theta = np.cov(x, y, ddof=1)[0, 1] / np.var(x, ddof=1)
    adj = y - theta * (x - x.mean())

    def cm(sl: slice) -> CovMoments:
        a, b = x[sl], y[sl]
        return CovMoments(len(a), b.sum(), (b * b).sum(), a.sum(), (a * a).sum(), (a * b).sum())

    got = cuped(cm(slice(0, n)), cm(slice(n, 2 * n)))
    ref = st.ttest_ind(adj[n:], adj[:n], equal_var=False)
    assert got.theta == pytest.approx(theta, rel=1e-9)
    assert got.estimate.p_value == pytest.approx(ref.pvalue, rel=1e-6)
    assert got.variance_reduction == pytest.approx(rho * rho, abs=0.03)


def test_msprt_is_conservative_and_its_sequence_narrows() -> None:
    s = msprt(0.0, 0.1, tau=0.1)
    assert s.p_value == 1.0 and s.ci_low < 0 < s.ci_high
    strong = msprt(0.5, 0.1, tau=0.1)
    fixed_p = 2 * st.norm.sf(5.0)
    assert fixed_p < strong.p_value < 0.05  # significant, but later than a fixed test
    path = sequential_path([(0.3, 0.2), (0.25, 0.1), (0.22, 0.05)], tau=0.1)
    last = msprt(0.22, 0.05, tau=0.1)
    assert path.ci_high <= last.ci_high and path.p_value <= last.p_value


def test_sample_size_equals_statsmodels_and_the_textbook() -> None:
    # proportion 10% -> 11%, alpha 0.05 two-sided, power 0.8: 14,751 per variant
    assert P.sample_size("proportion", 0.10, 0.01) == 14751
    # a mean: statsmodels' normal power solver (effect = mde / sd)
    n = P.sample_size("mean", 42.0, 2.0, sd=30.0)
    ref = NormalIndPower().solve_power(effect_size=2.0 / 30.0, alpha=0.05, power=0.8, ratio=1.0)
    assert abs(n - math.ceil(ref)) <= 1
    # CUPED removing 30% of the variance needs 30% fewer units
    assert P.sample_size("mean", 42.0, 2.0, sd=30.0, variance_reduction=0.3) == pytest.approx(
        0.7 * n, rel=0.001
    )
    # the detectable effect at that size is the MDE
    assert P.detectable_effect("mean", 42.0, n, sd=30.0) == pytest.approx(2.0, rel=0.001)


def test_plan_experiment_prints_json(capsys) -> None:
    argv = [
        "--metric-type",
        "proportion",
        "--baseline",
        "0.10",
        "--mde",
        "0.01",
        "--daily-units",
        "2000",
    ]
    assert P.main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sample_size_per_variant"] == 14751 and out["days"] == 15
    assert P.main(["--metric-type", "mean", "--baseline", "1", "--mde", "0.1"]) == 2  # no --sd
    assert "--sd" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        P.main(
            ["--metric-type", "proportion", "--baseline", "0.1", "--mde", "0.01", "--power", "1.5"]
        )


@pytest.mark.parametrize("effect", [0.0, 0.05])
def test_simulated_experiments_cover_the_truth(effect: float) -> None:
    """400 simulated experiments (14 daily looks): 95% intervals cover the planted effect
    93-97% of the time; with no effect the fixed-horizon test rejects at about alpha
    (within two binomial standard errors) and the daily-look sequential test at most at
    alpha; CUPED removes about rho^2 of the variance."""
    r = simulate(runs=400, effect=effect, rho=0.6, seed=21)
    print(r.as_dict())
    assert 0.93 <= r.coverage <= 0.97 and 0.93 <= r.cuped_coverage <= 0.97
    assert r.cuped_variance_reduction == pytest.approx(0.36, abs=0.03)
    if effect == 0.0:
        assert r.rejection_rate <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / r.runs)
        assert r.sequential_rejection_rate <= 0.05
        assert r.cuped_rejection_rate <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / r.runs)
    else:
        assert r.rejection_rate > 0.3  # positive control: a real effect is found
        assert r.cuped_rejection_rate > r.rejection_rate  # CUPED finds it more often
