"""Many experiments from the generator itself: each run simulates `persons` persons with
another seed (the planted experiments of conf/base/generator.yml, from day 7, 21 days),
takes each person's first logged exposure, counts orders and revenue in the 14 days
after it (and a look every day), and runs the production analysis
(`experiments.analysis.results`) on the per-variation sums. Measured over the runs: how
often the 95% interval holds the planted relative lift, the false-positive rate of the
no-effect experiment (fixed horizon, and sequential with a look every day), CUPED's
variance reduction (covariate: orders in the 30 days before exposure) against the
squared correlation of covariate and outcome, and how often the broken split is flagged.

Persons are simulated in Python without Spark (the generator's own code), so sessions
per user, which silver sessionizes, is not among the metrics here; the lake-level test
(tests/integration/test_experiments_planted.py) covers it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import date, datetime

import numpy as np

from behavior_lake.config import (
    ExperimentMetric,
    ExperimentSettings,
    GeneratorSettings,
    load_settings,
)
from behavior_lake.experiments.analysis import results
from behavior_lake.generator.simulate import expected_lifts, simulate_person

DAYS, START_DAY, WINDOW = 21, 7, 14
METRICS = {
    "orders_per_user": ExperimentMetric(kind="mean", measure="events", covariate="pre_orders"),
    "revenue_per_user": ExperimentMetric(kind="mean", measure="revenue", covariate="pre_orders"),
}


def _day(ts: datetime, start: date) -> int:
    return (ts.date() - start).days


def _units(g: GeneratorSettings, seed: int, persons: int) -> list[dict]:
    """One dict per exposed person and experiment: variation, exposure day and time,
    orders (day, revenue) after exposure, orders in the 30 days before."""
    start = date.fromisoformat(g.start_date)
    out: list[dict] = []
    seen: set[tuple[int, str]] = set()
    for idx in range(persons):
        _person, msgs = simulate_person(seed, idx, start, DAYS, 0.0, g.experiments, 0.0)
        orders = [
            (
                datetime.fromisoformat(m["timestamp"].replace("Z", "+00:00")),
                m["properties"]["revenue"],
            )
            for m in msgs
            if m.get("event") == "Order Completed"
        ]
        for m in msgs:
            if m.get("event") != "Experiment Viewed":
                continue
            exp = m["properties"]["experiment_id"]
            ts = datetime.fromisoformat(m["timestamp"].replace("Z", "+00:00"))
            if (idx, exp) in seen:
                continue  # first exposure only
            seen.add((idx, exp))
            out.append(
                dict(
                    idx=idx,
                    exp=exp,
                    variation=m["properties"]["variation_id"],
                    day=_day(ts, start),
                    after=[
                        (_day(o, start), r) for o, r in orders if o >= ts and (o - ts).days < WINDOW
                    ],
                    pre=sum(1 for o, _ in orders if 0 < (ts - o).total_seconds() / 86400 <= 30),
                )
            )
    return out


def _sums(units: list[dict]) -> tuple[list[dict], list[dict]]:
    sums: dict[tuple, np.ndarray] = defaultdict(lambda: np.zeros(10))
    counts: dict[tuple, int] = defaultdict(int)
    for look in range(START_DAY, DAYS):
        for u in units:
            if u["day"] > look:
                continue
            counts[(u["exp"], look, u["variation"])] += 1
            seen = [(d, r) for d, r in u["after"] if d <= look]
            x = float(u["pre"])
            for metric, y in (
                ("orders_per_user", float(len(seen))),
                ("revenue_per_user", sum(r for _, r in seen)),
            ):
                sums[(u["exp"], look, u["variation"], metric)] += (
                    1,
                    y,
                    y * y,
                    x,
                    x * x,
                    x * y,
                    0,
                    0,
                    0,
                    0,
                )
    keys = ("n", "sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy", "sum_d", "sum_d2", "sum_yd")
    rows = [
        dict(zip(("experiment_id", "analysis_date", "variation_id", "metric"), k, strict=True))
        | dict(zip(keys, v[:9], strict=True))
        for k, v in sums.items()
    ]
    count_rows = [
        dict(experiment_id=e, analysis_date=d, variation_id=v, persons=n)
        for (e, d, v), n in counts.items()
    ]
    return rows, count_rows


def _rho2(sums: list[dict]) -> dict[tuple[str, str], float]:
    """Squared within-variation correlation of covariate and outcome at the last look,
    pooled over variations: the variance share CUPED should remove."""
    last = max(r["analysis_date"] for r in sums)
    acc: dict[tuple[str, str], np.ndarray] = defaultdict(lambda: np.zeros(3))
    for r in sums:
        if r["analysis_date"] != last:
            continue
        n = r["n"]
        sxx = r["sum_x2"] - r["sum_x"] ** 2 / n
        syy = r["sum_y2"] - r["sum_y"] ** 2 / n
        sxy = r["sum_xy"] - r["sum_x"] * r["sum_y"] / n
        acc[(r["experiment_id"], r["metric"])] += (sxx, syy, sxy)
    return {k: (v[2] ** 2 / (v[0] * v[1]) if v[0] * v[1] > 0 else 0.0) for k, v in acc.items()}


def run(runs: int, persons: int, seed: int) -> dict:
    """Coverage, false positives, CUPED reduction and SRM over `runs` generated runs."""
    g = load_settings("local").generator
    g = replace(g, experiments=[replace(e, start_day=START_DAY) for e in g.experiments])
    truth = {e.id: e for e in g.experiments}
    cfg = ExperimentSettings(metrics=METRICS, window_days=WINDOW, min_units_per_variation=10)
    covered, total = defaultdict(int), defaultdict(int)
    null = defaultdict(int)
    reductions, implied = [], []
    srm = {"broken_split_flagged": 0, "correct_splits_flagged": 0}
    for r in range(runs):
        sums, counts = _sums(_units(g, seed + r, persons))
        rho2 = _rho2(sums)
        for x in (x for x in results(sums, counts, cfg) if x["is_latest"]):
            exp = truth[x["experiment_id"]]
            if x["metric"] == "orders_per_user":
                srm[
                    "broken_split_flagged" if exp.lost_exposure_share else "correct_splits_flagged"
                ] += x["srm_flag"]
            want = expected_lifts(exp).get(x["metric"])
            if exp.lost_exposure_share or want is None or x["relative_ci_low"] is None:
                continue
            key = f"{x['experiment_id']}:{x['metric']}"
            total[key] += 1
            covered[key] += x["relative_ci_low"] <= want <= x["relative_ci_high"]
            if not exp.effects:
                null["n"] += 1
                null["fixed"] += x["p_value"] < cfg.alpha
                null["sequential"] += x["seq_p_value"] < cfg.alpha
            if x["variance_reduction"] is not None:
                reductions.append(x["variance_reduction"])
                implied.append(rho2[(x["experiment_id"], x["metric"])])
    all_covered = sum(covered.values()) / max(sum(total.values()), 1)
    return {
        "runs": runs,
        "persons_per_run": persons,
        "days": DAYS,
        "start_day": START_DAY,
        "window_days": WINDOW,
        "coverage": {k: round(covered[k] / total[k], 4) for k in sorted(total)},
        "coverage_all": round(all_covered, 4),
        "null_false_positive_fixed": round(null["fixed"] / max(null["n"], 1), 4),
        "null_false_positive_sequential_daily": round(null["sequential"] / max(null["n"], 1), 4),
        "cuped_variance_reduction_mean": round(float(np.mean(reductions)), 4),
        "cuped_implied_rho2_mean": round(float(np.mean(implied)), 4),
        "srm_broken_split_flag_rate": round(srm["broken_split_flagged"] / runs, 4),
        "srm_correct_splits_flagged": srm["correct_splits_flagged"],
    }
