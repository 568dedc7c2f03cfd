"""Score eligible persons with the champion churn model into gold.churn_scores.

    python jobs/score_churn.py [--env local] [--as-of DATE] [--shadow | --no-shadow]
                               [--conf key=value ...]

Eligible = active in the churn.lookback_days before the snapshot. Rows with malformed
features (NaN/inf, or null where a feature is never null) are not scored as zeros: they
go to ops.scoring_rejects with the reason. In shadow mode the challenger scores the same
persons into gold.churn_scores_shadow and ops.shadow_comparison records rank correlation
and top-capacity overlap. Then past scoring dates whose labels have matured are evaluated
into ops.model_monitoring. No champion -> a clear error (exit 1), never empty scores.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from behavior_lake.ml.churn_jobs import score_churn
from behavior_lake.runtime import JobContext, base_parser, iso_date, main

JOB = "score_churn"


def run(ctx: JobContext, args) -> None:
    res = score_churn(ctx.lake, ctx.settings, args.as_of, args.shadow)
    ctx.record.rows_out = res.scored
    ctx.count(scored=res.scored, rejected=res.rejected, monitored=len(res.monitored))


def cli(argv: list[str] | None = None) -> int:
    parser = base_parser(JOB, __doc__.strip().splitlines()[0])
    parser.add_argument("--as-of", type=iso_date, help="snapshot date (default: the latest)")
    parser.add_argument(
        "--shadow",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also score with the challenger (default: churn.shadow)",
    )
    return main(JOB, argv, parser, run)


if __name__ == "__main__":
    sys.exit(cli())
