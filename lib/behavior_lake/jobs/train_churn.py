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

from behavior_lake.contracts.gold import USER_FEATURES
from behavior_lake.contracts.silver import EVENTS
from behavior_lake.ml.churn_train import train_churn
from behavior_lake.runtime import MODEL_CHURN, JobContext, JobDef, out

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


JOB_DEF = JobDef(
    name=JOB,
    description=__doc__.strip().splitlines()[0],
    inputs=(USER_FEATURES, EVENTS),
    outputs=(out(MODEL_CHURN, "append"),),
    body=run,
)

cli = JOB_DEF.cli  # the entry point: jobs/<name>.py, spark-submit, Databricks
