"""Train churn models on time-ordered cutoffs, track them in MLflow, gate champion/challenger.

    python jobs/train_churn.py [--env local] [--conf key=value ...]

Labels every complete weekly cutoff (gold.user_features snapshots whose horizon has been
observed), trains LogisticRegression and GBTClassifier on the earlier cutoffs, holds out
the latest, calibrates (isotonic) when that lowers the Brier score, fits an AFT survival
model of days until churn, logs everything to MLflow and registers the better model as
`churn_model` with the alias `challenger`; it becomes `champion` only through the gate
(churn.gate).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from behavior_lake.ml.churn_jobs import train_churn
from behavior_lake.runtime import JobContext, base_parser, main

JOB = "train_churn"


def run(ctx: JobContext, args) -> None:
    res = train_churn(ctx.lake, ctx.settings)
    m = res.metrics
    ctx.record.rows_in = m.rows
    ctx.count(holdout_rows=m.rows, champion=int("champion" in res.aliases))
    print(
        f"{JOB}: {ctx.settings.churn.model_name} v{res.model_version} ({res.kind}): holdout "
        f"PR AUC {m.pr_auc:.3f} (base rate {m.base_rate:.3f}, recency-only "
        f"{res.baseline_recency.pr_auc:.3f}), ROC AUC {m.roc_auc:.3f}, Brier {m.brier:.4f} "
        f"-> {', '.join(res.aliases)}" + (f" ({'; '.join(res.reasons)})" if res.reasons else "")
    )


def cli(argv: list[str] | None = None) -> int:
    parser = base_parser(JOB, __doc__.strip().splitlines()[0])
    return main(JOB, argv, parser, run)


if __name__ == "__main__":
    sys.exit(cli())
