"""Plan an experiment: the sample size per variant for a minimum detectable effect, or
the effect detectable with a given sample, or the days it takes at a daily traffic.

    python jobs/plan_experiment.py --metric-type proportion --baseline 0.10 --mde 0.01 \\
        [--alpha 0.05] [--power 0.8] [--variance-reduction 0.3] [--daily-units 4000]
    python jobs/plan_experiment.py --metric-type mean --baseline 42 --sd 30 --mde 2

MDE is absolute and the test two-sided, two equal variants. `--variance-reduction` is
the share of the outcome variance a pre-exposure covariate explains (CUPED: about the
squared correlation): the planned size with CUPED is printed next to the one without.
Prints JSON (`sample_size_per_variant`, ...). Needs no Spark.
"""

from __future__ import annotations

import argparse
import json
import math
import sys


def _z(alpha: float, power: float) -> tuple[float, float]:
    from scipy import stats as st  # imported here: --help works where scipy is absent

    return st.norm.ppf(1 - alpha / 2), st.norm.ppf(power)


def sample_size(
    metric_type: str,
    baseline: float,
    mde: float,
    alpha: float = 0.05,
    power: float = 0.8,
    sd: float | None = None,
    variance_reduction: float = 0.0,
) -> int:
    """Units per variant to detect an absolute `mde` with a two-sided test."""
    za, zb = _z(alpha, power)
    keep = 1 - variance_reduction
    if metric_type == "proportion":
        p1, p2 = baseline, baseline + mde
        if not (0 < p1 < 1 and 0 < p2 < 1):
            raise ValueError(
                f"--baseline and --baseline + --mde must lie in (0, 1), got {p1}, {p2}"
            )
        pbar = (p1 + p2) / 2
        num = za * math.sqrt(2 * pbar * (1 - pbar) * keep) + zb * math.sqrt(
            (p1 * (1 - p1) + p2 * (1 - p2)) * keep
        )
        return math.ceil(num**2 / mde**2)
    if sd is None or sd <= 0:
        raise ValueError("--sd: a mean metric needs its standard deviation (> 0)")
    return math.ceil(2 * sd * sd * keep * (za + zb) ** 2 / mde**2)


def detectable_effect(
    metric_type: str, baseline: float, n: int, alpha: float = 0.05, power: float = 0.8,
    sd: float | None = None, variance_reduction: float = 0.0,
) -> float:  # fmt: skip
    """The smallest absolute effect `n` units per variant detect (normal approximation
    with the baseline variance)."""
    za, zb = _z(alpha, power)
    var = baseline * (1 - baseline) if metric_type == "proportion" else (sd or 0.0) ** 2
    return (za + zb) * math.sqrt(2 * var * (1 - variance_reduction) / n)


def plan(args: argparse.Namespace) -> dict:
    kw = dict(alpha=args.alpha, power=args.power, sd=args.sd)
    n = sample_size(args.metric_type, args.baseline, args.mde, **kw)
    out = {
        "metric_type": args.metric_type,
        "baseline": args.baseline,
        "mde": args.mde,
        "relative_mde": args.mde / args.baseline if args.baseline else None,
        "alpha": args.alpha,
        "power": args.power,
        "sample_size_per_variant": n,
        "sample_size_total": 2 * n,
    }
    if args.variance_reduction:
        nc = sample_size(args.metric_type, args.baseline, args.mde,
                         variance_reduction=args.variance_reduction, **kw)  # fmt: skip
        out["variance_reduction"] = args.variance_reduction
        out["sample_size_per_variant_cuped"] = nc
    if args.daily_units:
        out["days"] = math.ceil(2 * n / args.daily_units)
        if "sample_size_per_variant_cuped" in out:
            out["days_cuped"] = math.ceil(
                2 * out["sample_size_per_variant_cuped"] / args.daily_units
            )
    return out


def observed(lake_root: str, experiment: str, metric: str) -> dict:
    """Baseline, standard deviation, CUPED variance reduction and persons per day of a
    metric as measured in gold.experiment_results (the control arm at the last analysis
    date), read in-process with delta-rs (no Spark)."""
    from deltalake import DeltaTable

    try:
        df = DeltaTable(f"{lake_root}/gold/experiment_results").to_pandas()
    except Exception as exc:  # a missing table, an unreadable root
        raise ValueError(
            f"--from-lake: no gold.experiment_results under {lake_root} ({exc})"
        ) from None
    rows = df[(df["experiment_id"] == experiment) & (df["metric"] == metric)]
    if rows.empty:
        known = sorted(set(df["experiment_id"] + ":" + df["metric"]))
        raise ValueError(f"--from-lake: no results for {experiment}:{metric}; known: {known[:20]}")
    rows = rows.sort_values("analysis_date")
    last = rows.iloc[-1]
    days = max((last["analysis_date"] - rows.iloc[0]["analysis_date"]).days + 1, 1)
    return {
        "metric_type": "proportion" if last["metric_kind"] == "proportion" else "mean",
        "baseline": float(last["mean_control"]),
        "sd": float(last["var_control"]) ** 0.5,
        "variance_reduction": max(float(last["variance_reduction"] or 0.0), 0.0),
        "daily_units": max(int((last["n_control"] + last["n_variation"]) / days), 1),
        "observed_at": str(last["analysis_date"]),
    }


def _fraction(name: str, low: float, high: float):
    def parse(raw: str) -> float:
        v = float(raw)
        if not low < v < high:
            raise argparse.ArgumentTypeError(
                f"{name}: expected a value in ({low}, {high}), got {raw}"
            )
        return v

    return parse


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="plan_experiment", description=__doc__.splitlines()[0])
    ap.add_argument("--metric-type", choices=["proportion", "mean"])
    ap.add_argument("--baseline", type=float, help="control rate or mean")
    ap.add_argument("--mde", type=float, required=True, help="absolute minimum detectable effect")
    ap.add_argument("--alpha", type=_fraction("--alpha", 0, 0.5), default=0.05)
    ap.add_argument("--power", type=_fraction("--power", 0.5, 1), default=0.8)
    ap.add_argument("--sd", type=float, help="standard deviation of a mean metric")
    ap.add_argument("--variance-reduction", type=_fraction("--variance-reduction", -1e-12, 1),
                    default=0.0, help="share of variance CUPED removes (0..1)")  # fmt: skip
    ap.add_argument("--daily-units", type=int, help="units entering per day (both variants)")
    ap.add_argument(
        "--from-lake",
        metavar="EXPERIMENT:METRIC",
        help="take metric type, baseline, sd, CUPED reduction and daily units as measured "
        "in gold.experiment_results (the explicit flags still win)",
    )
    ap.add_argument("--lake-root", default="lakehouse", help="lake root for --from-lake")
    return ap


def _with_observed(args: argparse.Namespace) -> argparse.Namespace:
    exp, sep, metric = (args.from_lake or "").partition(":")
    if not sep or not exp or not metric:
        raise ValueError(f"--from-lake: expected EXPERIMENT:METRIC, got {args.from_lake!r}")
    seen = observed(args.lake_root, exp, metric)
    for key, value in seen.items():
        if key != "observed_at" and getattr(args, key, None) in (None, 0.0):
            setattr(args, key, value)
    args.observed = seen
    return args


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    args = ap.parse_args(argv)
    if args.mde == 0:
        print("plan_experiment: --mde must not be 0", file=sys.stderr)
        return 2
    try:
        if args.from_lake:
            args = _with_observed(args)
        if args.metric_type is None or args.baseline is None:
            ap.error("--metric-type and --baseline are required (or --from-lake)")
        out = plan(args)
        if args.from_lake:
            out["observed"] = args.observed
        print(json.dumps(out, indent=2))
    except ValueError as exc:
        print(f"plan_experiment: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
