"""The churn model registry: a new version becomes challenger, and champion only through
the gate (ml.gate), compared with the current champion on the same holdout."""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame

from behavior_lake.config import Settings
from behavior_lake.ml import tracking
from behavior_lake.ml.churn import (
    Metrics,
    evaluate,
    probability,
)
from behavior_lake.ml.churn_data import CHALLENGER, CHAMPION
from behavior_lake.ml.gate import beats_champion, first_champion_shortfalls

log = logging.getLogger(__name__)


def promote(settings: Settings, version: str, holdout: DataFrame, new: Metrics, recency: Metrics):
    """New version -> challenger; champion if it beats the champion on the same holdout
    (PR AUC + margin, Brier not worse), or if there is no champion and it beats the naive
    baselines (ml.gate)."""
    cfg = settings.churn
    g = cfg.gate
    name = cfg.model_name
    tracking.set_alias(name, CHALLENGER, version)
    reasons = first_champion_shortfalls(new, recency, g)
    try:
        champ = tracking.version_by_alias(name, CHAMPION)
    except tracking.ModelNotFoundError:
        champ = None
    if champ is None:
        if not reasons:
            tracking.set_alias(name, CHAMPION, version)
            _drop_alias(name, CHALLENGER)
            log.info("churn: v%s is the first champion (beats the naive baselines)", version)
            return [CHAMPION], reasons
        log.warning(
            "churn: v%s stays challenger, no champion yet; to pass: %s",
            version,
            "; ".join(reasons),
        )
        return [CHALLENGER], reasons
    old = evaluate(probability(tracking.load_spark_model(name, champ.version), holdout), cfg)
    import mlflow

    mlflow.log_metrics({"champion_pr_auc": old.pr_auc, "champion_brier": old.brier})
    reasons = reasons + beats_champion(new, old, g)
    if not reasons:
        tracking.set_alias(name, CHAMPION, version)
        _drop_alias(name, CHALLENGER)
        log.info(
            "churn: v%s replaces champion v%s (PR AUC %.3f vs %.3f, Brier %.4f vs %.4f)",
            version, champ.version, new.pr_auc, old.pr_auc, new.brier, old.brier,
        )  # fmt: skip
        return [CHAMPION], reasons
    log.warning(
        "churn: v%s stays challenger (champion v%s kept): %s",
        version,
        champ.version,
        "; ".join(reasons),
    )
    return [CHALLENGER], reasons


def _drop_alias(name: str, alias: str) -> None:
    import mlflow

    try:
        mlflow.MlflowClient().delete_registered_model_alias(name, alias)
    except Exception:  # the alias may not exist
        pass
