"""Score eligible persons with the champion churn model into gold.churn_scores.

    python jobs/score_churn.py [--env local] [--as-of DATE] [--shadow | --no-shadow]
                               [--conf key=value ...]

Eligible = active in the churn.lookback_days before the snapshot. Rows with malformed
features (NaN/inf, or null where a feature is never null) are not scored as zeros: they
go to ops.scoring_rejects with the reason. In shadow mode the challenger scores the same
persons into gold.churn_scores_shadow and ops.shadow_comparison records rank correlation
and top-capacity overlap. Then past scoring dates whose labels have matured are evaluated
into ops.model_monitoring. No champion -> a clear error (exit 1), never empty scores.
The activation profile cache (Redis) gets the new profiles when it is reachable.
"""

from __future__ import annotations

import argparse

from behavior_lake.activation.cache import refresh_after_scoring
from behavior_lake.contracts.gold import USER_FEATURES
from behavior_lake.contracts.ml import (
    CHURN_SCORES,
    CHURN_SCORES_SHADOW,
    MODEL_MONITORING,
    SCORING_REJECTS,
    SHADOW_COMPARISON,
)
from behavior_lake.contracts.silver import EVENTS
from behavior_lake.ml.churn_score import score_churn
from behavior_lake.runtime import MODEL_CHURN, JobContext, JobDef, iso_date, out

JOB = "score_churn"


def run(ctx: JobContext, args) -> None:
    res = score_churn(ctx.lake, ctx.settings, args.as_of, args.shadow)
    ctx.record.rows_out = res.scored
    ctx.count(scored=res.scored, rejected=res.rejected, monitored=len(res.monitored))
    cached = refresh_after_scoring(ctx.lake, ctx.settings.activation.redis)
    ctx.count(redis_profiles=-1 if cached is None else cached)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as-of", type=iso_date, help="snapshot date (default: the latest)")
    parser.add_argument(
        "--shadow",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also score with the challenger (default: churn.shadow)",
    )


JOB_DEF = JobDef(
    name=JOB,
    description=__doc__.strip().splitlines()[0],
    inputs=(USER_FEATURES, EVENTS, MODEL_CHURN),
    outputs=(
        out(CHURN_SCORES.name, "replace_partitions"),
        out(CHURN_SCORES_SHADOW.name, "replace_partitions"),
        out(SHADOW_COMPARISON.name, "replace_partitions"),
        out(SCORING_REJECTS.name, "replace_partitions"),
        out(MODEL_MONITORING.name, "replace_partitions"),
    ),
    body=run,
    arguments=_arguments,
)

cli = JOB_DEF.cli  # the entry point: jobs/<name>.py, spark-submit, Databricks
