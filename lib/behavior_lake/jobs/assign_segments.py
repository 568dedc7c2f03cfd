"""Score persons with the champion segmentation model into gold.user_segments.

    python jobs/assign_segments.py [--env local] [--as-of DATE] [--conf key=value ...]

Scores every person of the latest (or the given) gold.user_features snapshot, new
persons included (no retraining), replacing that snapshot's rows (idempotent). Records
the segment-share shift against training (PSI) in ops.segment_drift with a
retrain_recommended flag. Fails with a clear message when no champion exists. The
activation profile cache (Redis) gets the new profiles when it is reachable.
"""

from __future__ import annotations

import argparse

from behavior_lake.activation.cache import refresh_after_scoring
from behavior_lake.contracts.gold import CATALOG, USER_FEATURES
from behavior_lake.contracts.ml import SEGMENT_DRIFT, USER_SEGMENTS
from behavior_lake.ml.segment_assign import assign_segments
from behavior_lake.runtime import MODEL_SEGMENTS, JobContext, JobDef, iso_date, out

JOB = "assign_segments"


def run(ctx: JobContext, args) -> None:
    res = assign_segments(ctx.lake, ctx.settings, args.as_of)
    ctx.record.rows_out = res.persons
    ctx.count(persons=res.persons, retrain_recommended=int(res.retrain_recommended))
    cached = refresh_after_scoring(ctx.lake, ctx.settings.activation.redis)
    ctx.count(redis_profiles=-1 if cached is None else cached)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as-of", type=iso_date, help="snapshot date (default: the latest)")


JOB_DEF = JobDef(
    name=JOB,
    description=__doc__.strip().splitlines()[0],
    inputs=(USER_FEATURES, CATALOG.name, MODEL_SEGMENTS),
    outputs=(
        out(USER_SEGMENTS.name, "replace_partitions"),
        out(SEGMENT_DRIFT.name, "replace_partitions"),
    ),
    body=run,
    arguments=_arguments,
)

cli = JOB_DEF.cli  # the entry point: jobs/<name>.py, spark-submit, Databricks
