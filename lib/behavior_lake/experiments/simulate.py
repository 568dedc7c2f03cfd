"""Simulated experiments with known truth, to measure the inference: interval coverage,
false-positive rates of fixed-horizon and sequential (daily look) tests, and the CUPED
variance reduction against the planted covariate correlation. Aggregate level: each
simulated day adds per-arm sums, as the lake's daily aggregates would."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from behavior_lake.experiments.stats import CovMoments, Moments, cuped, sequential_path, welch


@dataclass
class SimResult:
    runs: int
    effect: float
    rho: float
    coverage: float  # share of 95% intervals holding the true effect
    rejection_rate: float  # fixed horizon (the false-positive rate when effect = 0)
    sequential_rejection_rate: float  # mSPRT, a look every day
    cuped_coverage: float
    cuped_rejection_rate: float  # the power CUPED adds (or its false positives under A/A)
    cuped_variance_reduction: float  # mean of 1 - var(adjusted) / var(plain)
    expected_variance_reduction: float  # rho^2

    def as_dict(self) -> dict:
        return asdict(self)


def simulate(
    runs: int = 200,
    units_per_day: int = 400,
    days: int = 14,
    effect: float = 0.0,
    rho: float = 0.6,
    alpha: float = 0.05,
    tau: float = 0.1,
    seed: int = 7,
) -> SimResult:
    """Outcome y = effect * treated + rho * x + sqrt(1 - rho^2) * noise (sd 1), x the
    pre-exposure covariate (sd 1); units split 50/50 each day."""
    rng = np.random.default_rng(seed)
    covered = rejected = seq_rejected = cuped_covered = cuped_rejected = 0
    reductions = []
    half = units_per_day // 2
    for _ in range(runs):
        sums = np.zeros((2, 6))  # per arm: n, sy, syy, sx, sxx, sxy
        looks = []
        for _day in range(days):
            for arm in (0, 1):
                x = rng.standard_normal(half)
                y = effect * arm + rho * x + math.sqrt(1 - rho * rho) * rng.standard_normal(half)
                sums[arm] += (half, y.sum(), (y * y).sum(), x.sum(), (x * x).sum(), (x * y).sum())
            c = Moments.from_sums(int(sums[0, 0]), sums[0, 1], sums[0, 2])
            t = Moments.from_sums(int(sums[1, 0]), sums[1, 1], sums[1, 2])
            est = welch(c, t, alpha)
            looks.append((est.diff, est.se))
        covered += est.ci_low <= effect <= est.ci_high
        rejected += est.p_value < alpha
        seq_rejected += sequential_path(looks, tau, alpha).p_value < alpha
        cov = [CovMoments(int(a[0]), a[1], a[2], a[3], a[4], a[5]) for a in sums]
        adj = cuped(cov[0], cov[1], alpha)
        cuped_covered += adj.estimate.ci_low <= effect <= adj.estimate.ci_high
        cuped_rejected += adj.estimate.p_value < alpha
        reductions.append(adj.variance_reduction)
    return SimResult(
        runs=runs,
        effect=effect,
        rho=rho,
        coverage=float(covered) / runs,
        rejection_rate=float(rejected) / runs,
        sequential_rejection_rate=float(seq_rejected) / runs,
        cuped_coverage=float(cuped_covered) / runs,
        cuped_rejection_rate=float(cuped_rejected) / runs,
        cuped_variance_reduction=float(np.mean(reductions)),
        expected_variance_reduction=rho * rho,
    )
