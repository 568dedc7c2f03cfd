"""What a churn training run records in MLflow: curves, calibration, importances, card."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

from pyspark.ml import PipelineModel

from behavior_lake.ml import plots
from behavior_lake.ml.churn import roc_pr_lift

log = logging.getLogger(__name__)


def log_churn_artifacts(fit, split, settings) -> None:
    """Curves of every candidate and the recency baseline on one set of axes each (the
    base rate on PR, the capacity on lift), calibration of every probability, the
    survival check, importances, the model card."""
    import mlflow

    cfg = settings.churn
    curves = {name: roc_pr_lift(pts) for name, pts in fit.points.items()}
    m = fit.metrics
    capacity_share = m.capacity / m.rows if m.rows else None
    tables = {name: calibration_from_points(pts) for name, pts in fit.points.items()
              if name in fit.results}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        plots.curve(
            {label(n, fit): (c["fpr"], c["tpr"]) for n, c in curves.items()},
            "false positive rate", "true positive rate", "ROC (holdout)",
            d / "roc_curve.png", diagonal=True,
        )  # fmt: skip
        plots.curve(
            {label(n, fit): (c["recall"], c["precision"]) for n, c in curves.items()},
            "recall", "precision", "Precision-recall (holdout)", d / "pr_curve.png",
            hline=(m.base_rate, f"base rate {m.base_rate:.3f}"),
        )  # fmt: skip
        plots.curve(
            {label(n, fit): (c["share"], c["lift"]) for n, c in curves.items()},
            "share of persons contacted", "lift", "Cumulative lift (holdout)",
            d / "lift_chart.png",
            vline=None if capacity_share is None else (capacity_share, f"capacity {m.capacity}"),
            hline=(1.0, "random"),
        )  # fmt: skip
        plots.curve(
            {label(n, fit): ([r["mean_predicted"] for r in t], [r["observed"] for r in t])
             for n, t in tables.items()},
            "mean predicted probability", "observed churn rate", "Calibration (deciles)",
            d / "calibration.png", diagonal=True, markers=True,
        )  # fmt: skip
        (d / "calibration_table.json").write_text(json.dumps(tables, indent=2, default=float))
        if fit.survival_check:
            (d / "survival_check.json").write_text(json.dumps(fit.survival_check, indent=2))
        imp = _importances(fit.model, fit.kind, split.features)
        top = sorted(imp.items(), key=lambda kv: -abs(kv[1]))[:25]
        plots.bars(
            [k for k, _ in top][::-1],
            [v for _, v in top][::-1],
            "Feature importance" if fit.kind == "gbt" else "Coefficients (scaled features)",
            d / "feature_importance.png",
        )
        (d / "feature_importance.json").write_text(json.dumps(imp, indent=2))
        (d / "model_card.md").write_text(model_card(cfg, fit, split))
        mlflow.log_artifacts(str(d))


def label(name: str, fit) -> str:
    if name in fit.results:
        return f"{name} (chosen)" if name == fit.kind else name
    return f"{name} (ranking only)"


def calibration_from_points(points, bins: int = 10) -> list[dict]:
    """Equal-count bins of predicted probability: mean predicted vs observed rate."""
    pts = sorted(points)
    n = len(pts)
    out = []
    for b in range(bins):
        chunk = pts[b * n // bins : (b + 1) * n // bins]
        if chunk:
            out.append(
                {
                    "decile": b + 1,
                    "n": len(chunk),
                    "mean_predicted": sum(p for p, _ in chunk) / len(chunk),
                    "observed": sum(y for _, y in chunk) / len(chunk),
                }
            )
    return out


def _importances(model: PipelineModel, kind: str, features) -> dict[str, float]:
    clf = next(
        s for s in model.stages if hasattr(s, "featureImportances") or hasattr(s, "coefficients")
    )
    vals = clf.featureImportances.toArray() if kind == "gbt" else clf.coefficients.toArray()
    return {f: float(v) for f, v in zip(features, vals, strict=True)}


def model_card(cfg, fit, split) -> str:
    m, base, c_index = fit.metrics, fit.baseline, fit.c_index
    check = fit.survival_check or {}
    surv = (
        f"Survival (AFT Weibull, days until churn): concordance {c_index:.3f}. "
        f"`expected_active_days` = expected days before the churn moment within "
        f"{cfg.survival_window_days} days (bounded); `survival_probability` = still active "
        f"after {cfg.survival_window_days} days. Holdout check after {check.get('days')} days: "
        f"predicted {_f(check.get('predicted'))}, observed (Kaplan-Meier) {_f(check.get('observed'))}."
        if c_index is not None
        else "No survival model in this version: expected_active_days is left empty."
    )
    return f"""# Model card: {cfg.model_name}

**Predicts** the probability that a person active in the {cfg.lookback_days} days before a
cutoff has no activity in the {cfg.horizon_days} days from the cutoff ("churn").

**Data.** gold.user_features snapshots as cutoffs (features only from events before the
cutoff; labels only from events at or after it). Holdout = the latest complete cutoff
({split.holdout_cut}); training = earlier cutoffs. Class imbalance: {cfg.class_weight} instance weights.

**Model.** {fit.kind} on {len(split.features)} features (documented imputation, log1p, scaling);
{cfg.calibration_method} calibration {"applied (it lowered the Brier score)" if fit.calibrated else "not applied"}.

| holdout metric | model | recency-only baseline (a ranking) |
|---|---|---|
| ROC AUC | {m.roc_auc:.3f} | {base.roc_auc:.3f} |
| PR AUC (base rate {m.base_rate:.3f}) | {m.pr_auc:.3f} | {base.pr_auc:.3f} |
| Brier | {m.brier:.4f} | not a probability |
| log loss | {m.log_loss:.4f} | not a probability |
| precision in top {m.capacity} | {m.precision_at_capacity:.3f} | {base.precision_at_capacity:.3f} |
| lift in top {m.capacity} | {m.lift_at_capacity:.2f} | {base.lift_at_capacity:.2f} |

{surv}

**Assumptions and limits.** Churn is defined by inactivity only; persons who were not
active in the look-back window are not scored. Behaviour drifts: ops.model_monitoring
checks realized PR AUC once labels mature. Scores are correlational, **not causal**: a
high score says who is likely to leave, not why, nor whether an intervention helps
(test that with a holdout group).
"""


def _f(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"
