"""Correctness of the experiment statistics over many simulated experiments.

    python bench/experiments_bench.py [--runs 2000] [--generator-runs 200]   (make bench-experiments)

A/A (no effect) and A/B (planted effect 0.05 sd) runs, 14 daily looks of 400 units,
covariate correlation 0.6: interval coverage (plain and CUPED), fixed-horizon and
sequential (mSPRT, daily looks) rejection rates, CUPED variance reduction against the
planted rho^2. Then many experiments from the generator itself (experiments_generator.py):
coverage of the planted lifts, false positives, CUPED and SRM through the production
analysis. Writes bench/results/experiments-<UTC timestamp>.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import UTC, datetime

from behavior_lake.experiments.simulate import simulate
from experiments_generator import run as generator_runs
from results_io import write_result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--generator-runs", type=int, default=200, help="0 = skip")
    ap.add_argument("--generator-persons", type=int, default=400)
    args = ap.parse_args()
    t0 = time.monotonic()
    out = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": {
            "runs": args.runs,
            "units_per_day": 400,
            "days": 14,
            "rho": 0.6,
            "alpha": 0.05,
            "tau": 0.1,
        },
        "aa": simulate(runs=args.runs, effect=0.0, seed=args.seed).as_dict(),
        "ab": simulate(runs=args.runs, effect=0.05, seed=args.seed + 1).as_dict(),
    }
    if args.generator_runs:
        out["generator"] = generator_runs(args.generator_runs, args.generator_persons, args.seed)
    out["seconds"] = round(time.monotonic() - t0, 1)
    write_result("experiments", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
