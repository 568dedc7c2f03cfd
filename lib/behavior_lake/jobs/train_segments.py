"""Train the behavioral segmentation model, track it in MLflow and gate it to champion.

    python jobs/train_segments.py [--env local] [--as-of DATE] [--conf key=value ...]

Fits the configured algorithm for every k in segments.k_min..k_max on the latest (or the
given) gold.user_features snapshot, picks k by silhouette subject to the minimum segment
share, measures stability (bootstrap and previous-window refits, ARI), logs params,
metrics, plots, profiles and a model card to MLflow and registers the model. The new
version becomes `champion` only if the quality gate (segments.gate) passes; otherwise it
stays a candidate and the log says why (exit code 0 either way: the job did its work).
"""

from __future__ import annotations

import argparse

from behavior_lake.contracts.gold import CATALOG, USER_FEATURES
from behavior_lake.ml.segment_train import train_segments
from behavior_lake.runtime import MODEL_SEGMENTS, JobContext, JobDef, iso_date, out

JOB = "train_segments"


def run(ctx: JobContext, args) -> None:
    res = train_segments(ctx.lake, ctx.settings, args.as_of)
    ctx.record.rows_in = res.persons
    ctx.count(persons=res.persons, k=res.k, champion=int(res.passed))
    verdict = (
        "champion" if res.passed else "candidate (gate failed: " + "; ".join(res.reasons) + ")"
    )
    print(
        f"{JOB}: {ctx.settings.segments.model_name} v{res.model_version}: k={res.k} "
        f"silhouette={res.silhouette:.3f} stability_ari={res.stability_ari:.3f} -> {verdict}"
    )


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--as-of", type=iso_date, help="snapshot date (default: the latest)")


JOB_DEF = JobDef(
    name=JOB,
    description=__doc__.strip().splitlines()[0],
    inputs=(USER_FEATURES, CATALOG.name),
    outputs=(out(MODEL_SEGMENTS, "append"),),
    body=run,
    arguments=_arguments,
)

cli = JOB_DEF.cli  # the entry point: jobs/<name>.py, spark-submit, Databricks
