"""What a churn training run records in MLflow: curves, calibration, importances, card."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

from pyspark.ml import PipelineModel

from behavior_lake.ml import plots
from behavior_lake.ml.churn import (
    Metrics,
    calibration_table,
    curve_points,
    roc_pr_lift,
)

log = logging.getLogger(__name__)


def log_churn_artifacts(
    scored, model, kind, features, metrics, baseline, calibrated, c_index, settings, cut
) -> None:
    import mlflow

    cfg = settings.churn
    pts = curve_points(scored)
    cur = roc_pr_lift(pts)
    table = calibration_table(scored)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        plots.curve(
            {kind: (cur["fpr"], cur["tpr"])},
            "false positive rate",
            "true positive rate",
            "ROC (holdout)",
            d / "roc_curve.png",
            diagonal=True,
        )
        plots.curve(
            {kind: (cur["recall"], cur["precision"])},
            "recall",
            "precision",
            "Precision-recall (holdout)",
            d / "pr_curve.png",
        )
        plots.curve(
            {kind: (cur["share"], cur["lift"])},
            "share of persons contacted",
            "lift",
            "Cumulative lift (holdout)",
            d / "lift_chart.png",
        )
        plots.curve(
            {"model": ([r["mean_predicted"] for r in table], [r["observed"] for r in table])},
            "mean predicted probability",
            "observed churn rate",
            "Calibration (deciles)",
            d / "calibration.png",
            diagonal=True,
        )
        (d / "calibration_table.json").write_text(json.dumps(table, indent=2, default=float))
        imp = _importances(model, kind, features)
        top = sorted(imp.items(), key=lambda kv: -abs(kv[1]))[:25]
        plots.bars(
            [k for k, _ in top][::-1],
            [v for _, v in top][::-1],
            "Feature importance" if kind == "gbt" else "Coefficients (scaled features)",
            d / "feature_importance.png",
        )
        (d / "feature_importance.json").write_text(json.dumps(imp, indent=2))
        (d / "model_card.md").write_text(
            _card(cfg, kind, features, metrics, baseline, calibrated, c_index, cut)
        )
        mlflow.log_artifacts(str(d))  # fmt: skip


def _importances(model: PipelineModel, kind: str, features) -> dict[str, float]:
    clf = next(
        s for s in model.stages if hasattr(s, "featureImportances") or hasattr(s, "coefficients")
    )
    vals = clf.featureImportances.toArray() if kind == "gbt" else clf.coefficients.toArray()
    return {f: float(v) for f, v in zip(features, vals, strict=True)}


def _card(cfg, kind, features, m: Metrics, base: Metrics, calibrated, c_index, cut) -> str:
    return f"""# Model card: {cfg.model_name}

**Predicts** the probability that a person active in the {cfg.lookback_days} days before a
cutoff has no activity in the {cfg.horizon_days} days from the cutoff ("churn").

**Data.** gold.user_features snapshots as cutoffs (features only from events before the
cutoff; labels only from events at or after it). Holdout = the latest complete cutoff
({cut}); training = earlier cutoffs. Class imbalance: {cfg.class_weight} instance weights.

**Model.** {kind} on {len(features)} features (documented imputation, log1p, scaling);
{cfg.calibration_method} calibration {"applied (it lowered the Brier score)" if calibrated else "not applied"}.

| holdout metric | model | recency-only baseline |
|---|---|---|
| ROC AUC | {m.roc_auc:.3f} | {base.roc_auc:.3f} |
| PR AUC (base rate {m.base_rate:.3f}) | {m.pr_auc:.3f} | {base.pr_auc:.3f} |
| Brier | {m.brier:.4f} | - |
| log loss | {m.log_loss:.4f} | - |
| precision in top {m.capacity} | {m.precision_at_capacity:.3f} | {base.precision_at_capacity:.3f} |
| lift in top {m.capacity} | {m.lift_at_capacity:.2f} | {base.lift_at_capacity:.2f} |

Survival (AFT, days until churn) concordance index: {"n/a" if c_index is None else f"{c_index:.3f}"}.

**Assumptions and limits.** Churn is defined by inactivity only; persons who were not
active in the look-back window are not scored. Behaviour drifts: ops.model_monitoring
checks realized PR AUC once labels mature. Scores are correlational, **not causal**: a
high score says who is likely to leave, not why, nor whether an intervention helps
(test that with a holdout group).
"""
