"""Churn building blocks: labels, survival targets, metrics, concordance, row checks."""

from __future__ import annotations

import math
import random
from datetime import date, timedelta

import pytest
from pyspark.sql import SparkSession
from sklearn.metrics import log_loss, roc_auc_score

from behavior_lake.config import ChurnSettings
from behavior_lake.ml.churn import (
    calibrated_column,
    capacity_for,
    complete_cutoffs,
    concordance_index,
    evaluate,
    fit_platt,
    labels,
    roc_pr_lift,
    survival_targets,
)
from behavior_lake.ml.churn_score import _valid_rows

CFG = ChurnSettings(horizon_days=7, lookback_days=7)
C = date(2026, 3, 2)


def days_df(spark: SparkSession, rows: dict[str, list[int]]):
    """Active days given as offsets from the cutoff C."""
    data = [(p, C + timedelta(days=o)) for p, offs in rows.items() for o in offs]
    return spark.createDataFrame(data, "person_id string, day date")


def label_map(spark, rows) -> dict[str, float]:
    return {r.person_id: r.churned for r in labels(days_df(spark, rows), [C], CFG).collect()}


def test_labels_eligibility_and_horizon(spark: SparkSession) -> None:
    got = label_map(
        spark,
        {
            "stays": [-3, 2],  # active before and within the horizon
            "leaves": [-1],  # active before, nothing in [C, C+7)
            "late_return": [-2, 7],  # comes back only after the horizon: churned
            "too_old": [-8, 1],  # not active in the look-back window: not eligible
            "new": [0, 3],  # first seen at the cutoff: not eligible
        },
    )
    assert got == {"stays": 0.0, "leaves": 1.0, "late_return": 1.0}


def test_label_uses_no_data_before_the_cutoff(spark: SparkSession) -> None:
    """More activity before the cutoff never changes a label (only eligibility)."""
    base = label_map(spark, {"a": [-1, 3], "b": [-1]})
    busier = label_map(spark, {"a": [-7, -5, -3, -1, 3], "b": [-6, -4, -2, -1]})
    assert base == busier == {"a": 0.0, "b": 1.0}


def test_complete_cutoffs_only(spark: SparkSession) -> None:
    snaps = [date(2026, 3, 2) + timedelta(days=7 * i) for i in range(5)]
    last = date(2026, 3, 22)
    # C + 7 <= last + 1  ->  C <= 2026-03-16
    assert complete_cutoffs(snaps, last, CFG) == snaps[:3]
    assert complete_cutoffs(snaps, last, ChurnSettings(horizon_days=7, max_cutoffs=2)) == snaps[1:3]


def test_survival_targets(spark: SparkSession) -> None:
    last = C + timedelta(days=30)
    rows = {
        "gone": [-1],  # churn moment = day -1: duration floor 0.5, observed
        "gap": [-1, 2, 4, 20],  # gap 4 -> 20 > 7: churn moment day 4 -> 5 days
        "still": [-2, 3, 8, 14, 20, 25, 29],  # no gap > 7 up to the end: censored (31 days)
    }
    got = {
        r.person_id: (r.duration_days, r.observed)
        for r in survival_targets(days_df(spark, rows), [C], last, CFG).collect()
    }
    assert got == {"gone": (0.5, 1.0), "gap": (5.0, 1.0), "still": (31.0, 0.0)}


def test_concordance_index() -> None:
    rows = [(1.0, 1, 1.0), (2.0, 1, 2.0), (3.0, 0, 3.0), (4.0, 1, 4.0)]
    assert concordance_index(rows) == 1.0
    assert concordance_index([(t, e, -p) for t, e, p in rows]) == 0.0
    assert concordance_index([(t, e, 1.0) for t, e, _ in rows]) == 0.5


def test_metrics_match_reference(spark: SparkSession) -> None:
    rng = random.Random(3)
    ys = [1.0 if rng.random() < 0.3 else 0.0 for _ in range(400)]
    ps = [min(0.99, max(0.01, 0.3 * y + rng.random() * 0.7)) for y in ys]
    df = spark.createDataFrame(
        list(zip(ps, ys, strict=True)), "churn_probability double, churned double"
    )
    cfg = ChurnSettings(capacity_share=0.1)
    m = evaluate(df, cfg)
    assert m.rows == 400 and m.base_rate == pytest.approx(sum(ys) / 400)
    assert m.roc_auc == pytest.approx(roc_auc_score(ys, ps), abs=1e-6)
    assert m.log_loss == pytest.approx(log_loss(ys, ps), abs=1e-9)
    assert m.brier == pytest.approx(sum((p - y) ** 2 for p, y in zip(ps, ys, strict=True)) / 400)
    top = sorted(zip(ps, ys, strict=True), reverse=True)[:40]
    assert m.capacity == 40
    assert m.precision_at_capacity == pytest.approx(sum(y for _, y in top) / 40)
    assert m.lift_at_capacity == pytest.approx(m.precision_at_capacity / m.base_rate)
    curves = roc_pr_lift(list(zip(ps, ys, strict=True)))
    auc = sum(
        (curves["fpr"][i + 1] - curves["fpr"][i]) * (curves["tpr"][i + 1] + curves["tpr"][i]) / 2
        for i in range(len(ps))
    )
    assert auc == pytest.approx(roc_auc_score(ys, ps), abs=0.01)


def test_capacity() -> None:
    assert capacity_for(1000, ChurnSettings(capacity_share=0.1)) == 100
    assert capacity_for(5, ChurnSettings(capacity_share=0.1)) == 1
    assert capacity_for(1000, ChurnSettings(capacity_persons=25)) == 25


def test_malformed_rows_are_set_aside_not_zeroed(spark: SparkSession) -> None:
    df = spark.createDataFrame(
        [("ok", 1.0, 2.0), ("nan", math.nan, 2.0), ("inf", 1.0, math.inf), ("null", 1.0, None)],
        "person_id string, events_30d double, recency_days_event double",
    )
    good, bad = _valid_rows(df, ["events_30d", "recency_days_event"])
    assert [r.person_id for r in good.collect()] == ["ok"]
    reasons = {r.person_id: r._reason for r in bad.collect()}
    assert set(reasons) == {"nan", "inf", "null"}
    assert "events_30d: not a finite number" in reasons["nan"]
    assert reasons["null"] == "recency_days_event: null"


def test_platt_calibration_keeps_the_ranking_and_lowers_brier(spark: SparkSession) -> None:
    """A classifier whose margins are 3x too confident: Platt scaling recovers the true
    probabilities without changing the order of persons."""
    from pyspark.ml.linalg import Vectors

    rng = random.Random(11)
    rows = []
    for i in range(400):
        z = rng.uniform(-3, 3)
        p_true = 1 / (1 + math.exp(-z))
        m = 3 * z  # overconfident margin
        rows.append(
            (f"p{i}", Vectors.dense([-m, m]), float(rng.random() < p_true), 1 / (1 + math.exp(-m)))
        )
    df = spark.createDataFrame(rows, ["person_id", "rawPrediction", "churned", "p_raw"])
    scored = fit_platt(df).transform(df)
    out = scored.withColumn("p_cal", calibrated_column(scored))
    got = [(r["p_raw"], r["p_cal"], r["churned"]) for r in out.collect()]
    by_raw = [g[1] for g in sorted(got, key=lambda g: g[0])]
    assert by_raw == sorted(by_raw)  # monotone: the ranking (and so PR AUC) is unchanged
    brier_raw = sum((p - y) ** 2 for p, _, y in got) / len(got)
    brier_cal = sum((c - y) ** 2 for _, c, y in got) / len(got)
    assert brier_cal < brier_raw
