"""Realized quality of past scores once their labels have matured (ops.model_monitoring)."""

from __future__ import annotations

import json
import logging
from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from behavior_lake.config import Settings
from behavior_lake.contracts.ml import (
    CHURN_SCORES,
    MODEL_MONITORING,
)
from behavior_lake.contracts.silver import EVENTS
from behavior_lake.lake import Lake, Where
from behavior_lake.lake.base import spec_rows
from behavior_lake.ml.churn import (
    active_days,
    calibration_table,
    complete_cutoffs,
    evaluate,
    labels,
)
from behavior_lake.ml.churn_data import last_event, replace_max
from behavior_lake.ml.gate import pr_auc_skill

log = logging.getLogger(__name__)


def monitor(lake: Lake, settings: Settings) -> list[date]:
    """Realized PR AUC and calibration for past scoring dates whose labels matured."""
    cfg = settings.churn
    if not lake.exists(CHURN_SCORES.name):
        return []
    last = last_event(lake)
    scored_days = sorted(
        r[0] for r in lake.read(CHURN_SCORES.name).select("as_of_date").distinct().collect()
    )
    done: set[tuple] = set()
    if lake.exists(MODEL_MONITORING.name):
        done = {
            (r[0], r[1])
            for r in lake.read(MODEL_MONITORING.name)
            .select("as_of_date", "model_version")
            .collect()
        }
    days = active_days(lake.read(EVENTS))
    out = []
    for d in complete_cutoffs(scored_days, last, replace_max(cfg)):
        scores = lake.read(CHURN_SCORES.name).filter(F.col("as_of_date") == F.lit(d))
        for (version,) in scores.select("model_version").distinct().collect():
            if (d, version) in done:
                continue
            lab = labels(days, [d], cfg)
            joined = scores.filter(F.col("model_version") == version).join(
                lab, ["person_id", "as_of_date"]
            )
            if joined.limit(1).count() == 0:
                continue
            _record(lake, settings, d, version, joined)
            out.append(d)
    return out


def _record(lake: Lake, settings: Settings, d: date, version: str, joined: DataFrame) -> None:
    """One ops.model_monitoring row: realized metrics, calibration, retrain flag."""
    cfg = settings.churn
    m = evaluate(joined, cfg)
    table = calibration_table(joined)
    ece = sum(abs(r["mean_predicted"] - r["observed"]) * r["n"] for r in table) / max(1, m.rows)
    retrain = not pr_auc_skill(m) >= cfg.monitoring_min_pr_auc_skill
    row = (d, cfg.model_name, version, m.rows, m.base_rate, m.roc_auc, m.pr_auc, m.brier, ece,
           json.dumps(table, default=float), retrain)  # fmt: skip
    lake.overwrite(
        MODEL_MONITORING.name,
        spec_rows(lake.spark, MODEL_MONITORING, [row], "computed_at"),
        where=Where.eq("as_of_date", d) & Where.eq("model_version", version),
    )
    log.info(
        "churn monitoring %s v%s: realized PR AUC %.3f (base %.3f), ECE %.3f%s",
        d, version, m.pr_auc, m.base_rate, ece, " -> RETRAIN" if retrain else "",
    )  # fmt: skip
