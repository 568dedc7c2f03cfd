"""From per-variation sums to result rows: fixed-horizon, CUPED and always-valid
estimates, Benjamini-Hochberg across metrics, the sample-ratio test.

Runs on the driver over aggregates (experiments x dates x variations x metrics rows),
never over persons. Methods and assumptions: docs/experiments.md.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from behavior_lake.config import ExperimentMetric, ExperimentSettings
from behavior_lake.experiments import stats

Key = tuple[str, date]  # experiment, analysis date


@dataclass(frozen=True)
class Sums:
    n: int
    sum_y: float
    sum_y2: float
    sum_x: float
    sum_x2: float
    sum_xy: float
    sum_d: float
    sum_d2: float
    sum_yd: float

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> Sums:
        return cls(int(row["n"]), *(float(row[k] or 0.0) for k in _FLOATS))

    def cov(self) -> stats.CovMoments:
        return stats.CovMoments(
            self.n, self.sum_y, self.sum_y2, self.sum_x, self.sum_x2, self.sum_xy
        )

    def ratio(self) -> stats.RatioMoments:
        return stats.RatioMoments(
            self.n, self.sum_y, self.sum_y2, self.sum_d, self.sum_d2, self.sum_yd
        )


_FLOATS = ("sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy", "sum_d", "sum_d2", "sum_yd")


def control_of(variations: Iterable[str], preferred: str) -> str:
    """The configured control variation, else the lowest id."""
    names = sorted(set(variations))
    return preferred if preferred in names else names[0]


def estimate(
    m: ExperimentMetric, c: Sums, t: Sums, alpha: float
) -> tuple[stats.Estimate, float, float, stats.Cuped | None]:
    """(estimate, control mean, variation mean, CUPED or None) of one comparison; the
    means are the ratio for ratio metrics."""
    if m.kind == "ratio":
        rc, rt = c.ratio(), t.ratio()
        return stats.ratio_delta(rc, rt, alpha), rc.ratio, rt.ratio, None
    if m.kind == "proportion":
        est = stats.proportions(round(c.sum_y), c.n, round(t.sum_y), t.n, alpha)
    else:
        est = stats.welch(c.cov().y(), t.cov().y(), alpha)
    cup = None
    if m.covariate and c.cov().x().var + t.cov().x().var > 0:
        cup = stats.cuped(c.cov(), t.cov(), alpha)
    return est, c.sum_y / c.n, t.sum_y / t.n, cup


def _unit_var(m: ExperimentMetric, s: Sums) -> float:
    if m.kind == "ratio":
        return s.ratio().unit_var()
    return s.cov().y().var


def srm_tests(
    counts: Iterable[Mapping[str, Any]], splits: Mapping[str, Mapping[str, float]]
) -> dict[Key, tuple[float, str]]:
    """Chi-square p-value of the persons per variation against the planned split
    (equal unless `experiments.splits` says otherwise) and a readable detail."""
    per: dict[Key, dict[str, int]] = defaultdict(dict)
    for r in counts:
        per[(r["experiment_id"], r["analysis_date"])][r["variation_id"]] = int(r["persons"])
    out: dict[Key, tuple[float, str]] = {}
    for key, observed in per.items():
        names = sorted(observed)
        plan = splits.get(key[0], {})
        shares = [float(plan.get(v, 1.0 if not plan else 0.0)) for v in names]
        if len(names) < 2 or min(shares) <= 0:
            out[key] = (1.0, f"observed {observed}; no comparison possible with split {dict(plan)}")
            continue
        _, p = stats.srm([observed[v] for v in names], shares)
        total = sum(shares)
        planned = ", ".join(f"{v} {s / total:.1%}" for v, s in zip(names, shares, strict=True))
        out[key] = (p, f"observed {observed}; planned {planned}")
    return out


def results(
    sums: Iterable[Mapping[str, Any]],
    counts: Iterable[Mapping[str, Any]],
    cfg: ExperimentSettings,
    metrics: Mapping[str, ExperimentMetric] | None = None,
) -> list[dict[str, Any]]:
    """One dict per experiment, metric, non-control variation and analysis date with
    both arms over `min_units_per_variation` persons (columns of
    gold.experiment_results without names, exclusions and stamps)."""
    metrics = metrics if metrics is not None else cfg.metrics
    cells: dict[tuple[str, str, date], dict[str, Sums]] = defaultdict(dict)
    for r in sums:
        cells[(r["experiment_id"], r["metric"], r["analysis_date"])][r["variation_id"]] = Sums.of(r)
    srm = srm_tests(counts, cfg.splits)
    rows: list[dict[str, Any]] = []
    for (exp, metric, day), arms in sorted(cells.items()):
        m = metrics[metric]
        control = control_of(arms, cfg.control_variation)
        for variation, t in sorted(arms.items()):
            c = arms[control]
            if variation == control or min(c.n, t.n) < cfg.min_units_per_variation:
                continue
            if m.kind == "ratio" and min(c.sum_d, t.sum_d) <= 0:
                continue
            rows.append(_row(exp, metric, day, m, control, variation, c, t, cfg))
            rows[-1]["srm_p_value"], rows[-1]["_srm_detail"] = srm.get((exp, day), (1.0, ""))
    _sequential(rows, cfg)
    _bh(rows, cfg.alpha)
    for r in rows:
        r["srm_flag"] = r["srm_p_value"] < cfg.srm_alpha
    latest: dict[str, date] = {}
    for r in rows:
        latest[r["experiment_id"]] = max(
            latest.get(r["experiment_id"], r["analysis_date"]), r["analysis_date"]
        )
    for r in rows:
        r["is_latest"] = r["analysis_date"] == latest[r["experiment_id"]]
        for k, v in r.items():  # numpy scalars (scipy's results) -> Python numbers
            if hasattr(v, "item") and not isinstance(v, str | bytes | date):
                r[k] = v.item()
    return rows


def _row(
    exp: str, metric: str, day: date, m: ExperimentMetric, control: str, variation: str,
    c: Sums, t: Sums, cfg: ExperimentSettings,
) -> dict[str, Any]:  # fmt: skip
    est, mc, mt, cup = estimate(m, c, t, cfg.alpha)
    vc, vt = _unit_var(m, c), _unit_var(m, t)
    row: dict[str, Any] = dict(
        analysis_date=day, experiment_id=exp, metric=metric, metric_kind=m.kind,
        is_guardrail=m.guardrail, control_id=control, variation_id=variation,
        n_control=c.n, n_variation=t.n, mean_control=mc, mean_variation=mt,
        var_control=vc, var_variation=vt, lift=est.diff, lift_ci_low=est.ci_low,
        lift_ci_high=est.ci_high, relative_lift=est.relative, relative_ci_low=est.rel_ci_low,
        relative_ci_high=est.rel_ci_high, p_value=min(max(est.p_value, 0.0), 1.0),
        covariate=m.covariate or None, cuped_lift=None, cuped_ci_low=None, cuped_ci_high=None,
        cuped_relative_lift=None, cuped_p_value=None, variance_reduction=None,
        _se=est.se, _sd=math.sqrt((vc + vt) / 2),
    )  # fmt: skip
    if cup is not None:
        e = cup.estimate
        row.update(
            cuped_lift=e.diff, cuped_ci_low=e.ci_low, cuped_ci_high=e.ci_high,
            cuped_relative_lift=e.relative, cuped_p_value=min(max(e.p_value, 0.0), 1.0),
            variance_reduction=cup.variance_reduction,
        )  # fmt: skip
    return row


def _sequential(rows: list[dict[str, Any]], cfg: ExperimentSettings) -> None:
    """Always-valid p-value and interval: the mSPRT at every look so far (dates in
    order), its running minimum p-value and the intersection of its intervals."""
    series: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        series[(r["experiment_id"], r["metric"], r["variation_id"])].append(r)
    for looks in series.values():
        p, low, high = 1.0, -math.inf, math.inf
        for r in sorted(looks, key=lambda x: x["analysis_date"]):
            tau = cfg.sequential_tau_sd * r.pop("_sd")
            if tau > 0 and r["_se"] > 0:
                s = stats.msprt(r["lift"], r.pop("_se"), tau, cfg.alpha)
                p, low, high = min(p, s.p_value), max(low, s.ci_low), min(high, s.ci_high)
            else:
                r.pop("_se")
            r["seq_p_value"] = p
            r["seq_ci_low"] = low if math.isfinite(low) else None
            r["seq_ci_high"] = high if math.isfinite(high) else None
            r["seq_significant"] = p < cfg.alpha


def _bh(rows: list[dict[str, Any]], alpha: float) -> None:
    """Benjamini-Hochberg over the metrics of one experiment, variation and date."""
    groups: dict[tuple[str, str, date], list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        groups[(r["experiment_id"], r["variation_id"], r["analysis_date"])].append(r)
    for group in groups.values():
        adjusted = stats.benjamini_hochberg([r["p_value"] for r in group])
        for r, q in zip(group, adjusted, strict=True):
            r["p_value_bh"] = min(q, 1.0)
            r["is_significant"] = q < alpha
