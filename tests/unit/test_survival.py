"""Bounded survival outputs: restricted mean and survival probability of the AFT
(Weibull) model against closed forms (scipy), Kaplan-Meier by hand."""

from __future__ import annotations

import math

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from scipy.special import gamma, gammainc

from behavior_lake.ml.churn import kaplan_meier, restricted_mean_days, survival_at


def rmst(scale: float, shape: float, window: float) -> float:
    """E[min(T, window)] for a Weibull: scale * Gamma(1 + 1/k) * P(1/k, (window/scale)^k)
    ... via the lower incomplete gamma: the integral of exp(-(t/scale)^k) from 0 to W."""
    a = 1.0 / shape
    x = (window / scale) ** shape
    return scale / shape * gamma(a) * gammainc(a, x)


@pytest.mark.parametrize("shape", [0.3, 0.5, 0.8, 1.0, 1.7, 3.0])
def test_restricted_mean_matches_the_closed_form(spark: SparkSession, shape: float) -> None:
    window = 90
    scales = [0.05, 1.0, 10.0, 45.0, 90.0, 400.0, 1e6, 5e12]
    df = spark.createDataFrame([(s,) for s in scales], "scale double")
    rows = df.select(
        "scale",
        restricted_mean_days(F.col("scale"), shape, window).alias("m"),
        survival_at(F.col("scale"), shape, window).alias("s"),
    ).collect()
    for r in rows:
        assert 0.0 <= r["m"] <= window
        # within 0.5% of the window, whatever the scale (a flat hazard gives ~ the window)
        assert r["m"] == pytest.approx(rmst(r["scale"], shape, window), abs=0.005 * window)
        assert r["s"] == pytest.approx(math.exp(-((window / r["scale"]) ** shape)), rel=1e-9)
        # the area under a non-increasing S is at least window * S(window)
        assert r["m"] >= window * r["s"] - 0.005 * window
    by_scale = {r["scale"]: r["m"] for r in rows}
    assert by_scale[5e12] == pytest.approx(window, rel=1e-3)  # was 5e12 days before
    assert by_scale[0.05] < 1.0


def test_kaplan_meier_by_hand() -> None:
    # durations: events at 2, 2, 5; censored at 3 and 8 -> n=5
    counts = [(2.0, 2, 0), (3.0, 0, 1), (5.0, 1, 0), (8.0, 0, 1)]
    assert kaplan_meier(counts, 1) == 1.0
    assert kaplan_meier(counts, 2) == pytest.approx(3 / 5)
    assert kaplan_meier(counts, 4) == pytest.approx(3 / 5)  # a censoring does not drop S
    assert kaplan_meier(counts, 5) == pytest.approx(3 / 5 * (1 - 1 / 2))
    assert kaplan_meier([], 5) is None
