"""The churn promotion gate as pure functions of holdout metrics.

Every measure here is independent of the base rate, so the gate can pass on data where
almost everyone churns as well as where almost no one does: a PR AUC / base-rate lift
cannot exceed 1 / base rate (1.22 at an 82% base rate), a fixed lift threshold can.
"""

from __future__ import annotations

from behavior_lake.config import ChurnGate
from behavior_lake.ml.churn import Metrics


def pr_auc_skill(m: Metrics) -> float:
    """(PR AUC - base rate) / (1 - base rate): 0 for a score no better than the base
    rate, 1 for a perfect ranking, at any base rate. NaN when undefined (one class)."""
    if not 0 < m.base_rate < 1:
        return float("nan")
    return (m.pr_auc - m.base_rate) / (1 - m.base_rate)


def first_champion_shortfalls(new: Metrics, recency: Metrics, gate: ChurnGate) -> list[str]:
    """What keeps `new` from becoming the first champion, each with the value that would
    pass (empty = it passes). `recency` is the recency-only score on the same holdout."""
    out = []
    if not new.roc_auc >= gate.min_roc_auc:
        out.append(
            f"ROC AUC {new.roc_auc:.3f} < churn.gate.min_roc_auc {gate.min_roc_auc} "
            "(the base-rate baseline scores 0.5)"
        )
    need = recency.roc_auc + gate.min_roc_auc_gain_over_recency
    if not new.roc_auc >= need:
        out.append(
            f"ROC AUC {new.roc_auc:.3f} < recency-only {recency.roc_auc:.3f} + "
            f"churn.gate.min_roc_auc_gain_over_recency {gate.min_roc_auc_gain_over_recency} "
            f"= {need:.3f}"
        )
    skill = pr_auc_skill(new)
    if not skill >= gate.min_pr_auc_skill:
        out.append(
            f"PR AUC skill {skill:.3f} (PR AUC {new.pr_auc:.3f} at base rate "
            f"{new.base_rate:.3f}) < churn.gate.min_pr_auc_skill {gate.min_pr_auc_skill}; "
            f"needs PR AUC >= "
            f"{new.base_rate + gate.min_pr_auc_skill * (1 - new.base_rate):.3f}"
        )
    return out


def beats_champion(new: Metrics, champion: Metrics, gate: ChurnGate) -> list[str]:
    """What keeps `new` from replacing the champion, measured on the same holdout."""
    out = []
    if not new.pr_auc >= champion.pr_auc + gate.promote_pr_auc_margin:
        out.append(
            f"PR AUC {new.pr_auc:.3f} < champion {champion.pr_auc:.3f} + "
            f"churn.gate.promote_pr_auc_margin {gate.promote_pr_auc_margin}"
        )
    if not new.brier <= champion.brier:
        out.append(f"Brier {new.brier:.4f} > champion {champion.brier:.4f}")
    return out
