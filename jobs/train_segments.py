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

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from behavior_lake.ml.segment_jobs import train_segments
from behavior_lake.runtime import JobContext, base_parser, iso_date, main

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


def cli(argv: list[str] | None = None) -> int:
    parser = base_parser(JOB, __doc__.strip().splitlines()[0])
    parser.add_argument("--as-of", type=iso_date, help="snapshot date (default: the latest)")
    return main(JOB, argv, parser, run)


if __name__ == "__main__":
    sys.exit(cli())
