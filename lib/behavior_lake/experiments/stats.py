"""Two-sample inference from per-variant aggregates.

Conventions: `control` and `treatment` are `Moments` (n, mean, sample variance with
n - 1); differences are treatment - control; intervals are two-sided at level 1 - alpha.
Fixed-horizon tests are Welch's t (means) and the two-proportion z-test (pooled for the
p-value, unpooled for the interval), as scipy and statsmodels compute them. The
always-valid test is the normal-mixture sequential probability ratio test (mSPRT):
its p-value and confidence sequence stay valid however often the results are looked at.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats as st


@dataclass(frozen=True)
class Moments:
    n: int
    mean: float
    var: float  # sample variance (n - 1 in the denominator)

    @classmethod
    def from_sums(cls, n: int, total: float, total_sq: float) -> Moments:
        """From n, sum(y) and sum(y^2), as a GROUP BY gives them."""
        if n < 2:
            raise ValueError(f"need at least 2 units per variant, got {n}")
        mean = total / n
        var = max((total_sq - n * mean * mean) / (n - 1), 0.0)
        return cls(n, mean, var)

    @property
    def se2(self) -> float:
        """Squared standard error of the mean."""
        return self.var / self.n


@dataclass(frozen=True)
class Estimate:
    diff: float  # absolute lift: treatment - control
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    relative: float | None = None  # treatment / control - 1
    rel_ci_low: float | None = None
    rel_ci_high: float | None = None


def welch(control: Moments, treatment: Moments, alpha: float = 0.05) -> Estimate:
    """Welch's unequal-variance t-test on the difference of means."""
    v1, v2 = control.se2, treatment.se2
    diff = treatment.mean - control.mean
    se = math.sqrt(v1 + v2)
    df = (v1 + v2) ** 2 / (v1**2 / (control.n - 1) + v2**2 / (treatment.n - 1)) if se else 1.0
    t = diff / se if se else 0.0
    p = 2 * st.t.sf(abs(t), df)
    q = st.t.ppf(1 - alpha / 2, df)
    rel = relative_lift(control, treatment, alpha)
    return Estimate(diff, se, diff - q * se, diff + q * se, float(p), *rel)


def proportions(
    control_conv: int, control_n: int, treatment_conv: int, treatment_n: int, alpha: float = 0.05
) -> Estimate:
    """Two-proportion z-test: pooled standard error for the p-value (H0: equal rates),
    unpooled for the interval of the difference."""
    p1, p2 = control_conv / control_n, treatment_conv / treatment_n
    pooled = (control_conv + treatment_conv) / (control_n + treatment_n)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / control_n + 1 / treatment_n))
    se = math.sqrt(p1 * (1 - p1) / control_n + p2 * (1 - p2) / treatment_n)
    diff = p2 - p1
    z = diff / se0 if se0 else 0.0
    p = 2 * st.norm.sf(abs(z))
    q = st.norm.ppf(1 - alpha / 2)
    c = Moments(control_n, p1, p1 * (1 - p1) * control_n / max(control_n - 1, 1))
    t = Moments(treatment_n, p2, p2 * (1 - p2) * treatment_n / max(treatment_n - 1, 1))
    rel = relative_lift(c, t, alpha)
    return Estimate(diff, se, diff - q * se, diff + q * se, float(p), *rel)


def relative_lift(
    control: Moments, treatment: Moments, alpha: float = 0.05
) -> tuple[float | None, float | None, float | None]:
    """treatment.mean / control.mean - 1 with a delta-method interval (independent
    groups); None when the control mean is 0."""
    if control.mean == 0:
        return None, None, None
    r = treatment.mean / control.mean
    var = treatment.se2 / control.mean**2 + treatment.mean**2 * control.se2 / control.mean**4
    q = st.norm.ppf(1 - alpha / 2)
    half = q * math.sqrt(var)
    return r - 1, r - 1 - half, r - 1 + half


@dataclass(frozen=True)
class CovMoments:
    """Per-variant aggregates of an outcome y and a pre-exposure covariate x."""

    n: int
    sum_y: float
    sum_y2: float
    sum_x: float
    sum_x2: float
    sum_xy: float

    def y(self) -> Moments:
        return Moments.from_sums(self.n, self.sum_y, self.sum_y2)

    def x(self) -> Moments:
        return Moments.from_sums(self.n, self.sum_x, self.sum_x2)

    def cov(self) -> float:
        return (self.sum_xy - self.sum_x * self.sum_y / self.n) / (self.n - 1)


@dataclass(frozen=True)
class Cuped:
    estimate: Estimate
    theta: float
    variance_reduction: float  # 1 - var(adjusted lift) / var(unadjusted lift)


def cuped(control: CovMoments, treatment: CovMoments, alpha: float = 0.05) -> Cuped:
    """CUPED (Deng et al. 2013): y - theta (x - mean x) with theta = cov(x, y) / var(x)
    pooled over both variants and the overall mean of x, then Welch on the adjusted
    means. Randomization keeps the covariate balanced, so the lift is unbiased; its
    variance shrinks by about the squared correlation of x and y."""
    n = control.n + treatment.n
    sx, sy = control.sum_x + treatment.sum_x, control.sum_y + treatment.sum_y
    sxx, sxy = control.sum_x2 + treatment.sum_x2, control.sum_xy + treatment.sum_xy
    var_x = (sxx - sx * sx / n) / (n - 1)
    cov_xy = (sxy - sx * sy / n) / (n - 1)
    theta = cov_xy / var_x if var_x > 0 else 0.0
    mx = sx / n

    def adjusted(g: CovMoments) -> Moments:
        y, x = g.y(), g.x()
        var = y.var + theta**2 * x.var - 2 * theta * g.cov()
        return Moments(g.n, y.mean - theta * (x.mean - mx), max(var, 0.0))

    plain = welch(control.y(), treatment.y(), alpha)
    adj = welch(adjusted(control), adjusted(treatment), alpha)
    reduction = 1 - (adj.se**2 / plain.se**2) if plain.se else 0.0
    return Cuped(adj, theta, reduction)


def srm(counts: Sequence[int], shares: Sequence[float]) -> tuple[float, float]:
    """Sample-ratio mismatch: Pearson's chi-square of the observed units per variant
    against the planned shares; (statistic, p-value)."""
    total = sum(counts)
    norm = sum(shares)
    expected = [total * s / norm for s in shares]
    chi2 = sum((o - e) ** 2 / e for o, e in zip(counts, expected, strict=True) if e > 0)
    return chi2, float(st.chi2.sf(chi2, len(counts) - 1))


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), in input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        adjusted[i] = running
    return adjusted


@dataclass(frozen=True)
class Sequential:
    p_value: float  # always valid
    ci_low: float
    ci_high: float


def msprt(diff: float, se: float, tau: float, alpha: float = 0.05) -> Sequential:
    """Normal-mixture SPRT (Johari, Pekelis, Walsh): with a N(0, tau^2) mixture over the
    effect, the likelihood ratio of the estimate `diff` (variance V = se^2) is
    sqrt(V / (V + tau^2)) exp(tau^2 diff^2 / (2 V (V + tau^2))); 1/ratio is an
    always-valid p-value and the set of effects not rejected at alpha a confidence
    sequence. Take the running minimum of p (running intersection of intervals) over
    the looks (see `sequential_path`)."""
    v = se * se
    if v <= 0:
        return Sequential(1.0, -math.inf, math.inf)
    t2 = tau * tau
    log_lr = 0.5 * math.log(v / (v + t2)) + t2 * diff * diff / (2 * v * (v + t2))
    p = min(1.0, math.exp(-log_lr))
    radius = math.sqrt(2 * v * (v + t2) / t2 * (math.log(1 / alpha) + 0.5 * math.log((v + t2) / v)))
    return Sequential(p, diff - radius, diff + radius)


def sequential_path(
    looks: Sequence[tuple[float, float]], tau: float, alpha: float = 0.05
) -> Sequential:
    """Always-valid result after a series of looks (diff, se): the smallest p-value so
    far and the intersection of the intervals so far."""
    p, low, high = 1.0, -math.inf, math.inf
    for diff, se in looks:
        s = msprt(diff, se, tau, alpha)
        p, low, high = min(p, s.p_value), max(low, s.ci_low), min(high, s.ci_high)
    return Sequential(p, low, high)


@dataclass(frozen=True)
class RatioMoments:
    """Per-variant sums of a ratio metric's numerator y and denominator d per unit
    (e.g. events and sessions per person): the metric is sum(y) / sum(d)."""

    n: int
    sum_y: float
    sum_y2: float
    sum_d: float
    sum_d2: float
    sum_yd: float

    @property
    def ratio(self) -> float:
        return self.sum_y / self.sum_d

    def unit_var(self) -> float:
        """Variance per unit of the linearisation (y - R d) / mean(d) (delta method):
        (var y - 2 R cov(y, d) + R^2 var d) / mean(d)^2, sample moments (n - 1)."""
        n = self.n
        my, md = self.sum_y / n, self.sum_d / n
        r = my / md
        vy = (self.sum_y2 - n * my * my) / (n - 1)
        vd = (self.sum_d2 - n * md * md) / (n - 1)
        cyd = (self.sum_yd - n * my * md) / (n - 1)
        return max((vy - 2 * r * cyd + r * r * vd) / (md * md), 0.0)


def ratio_delta(control: RatioMoments, treatment: RatioMoments, alpha: float = 0.05) -> Estimate:
    """Difference of two ratio metrics with delta-method standard errors (normal test);
    the relative lift's interval by the delta method as well."""
    rc, rt = control.ratio, treatment.ratio
    vc, vt = control.unit_var() / control.n, treatment.unit_var() / treatment.n
    diff = rt - rc
    se = math.sqrt(vc + vt)
    p = 2 * st.norm.sf(abs(diff / se)) if se else 1.0
    q = st.norm.ppf(1 - alpha / 2)
    rel: tuple[float | None, float | None, float | None] = (None, None, None)
    if rc:
        half = q * math.sqrt(vt / rc**2 + rt**2 * vc / rc**4)
        rel = (rt / rc - 1, rt / rc - 1 - half, rt / rc - 1 + half)
    return Estimate(diff, se, diff - q * se, diff + q * se, float(p), *rel)
