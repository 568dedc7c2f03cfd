"""The first-champion gate passes a useful model at any base rate and still refuses one
that does not beat the naive baselines."""

from __future__ import annotations

from behavior_lake.config import ChurnGate
from behavior_lake.ml.churn import Metrics
from behavior_lake.ml.gate import beats_champion, first_champion_shortfalls, pr_auc_skill


def m(base: float, roc: float, pr: float, brier: float = 0.15) -> Metrics:
    return Metrics(1000, base, roc, pr, brier, 0.5, 100, 0.0, 0.0)


def test_high_base_rate_model_passes() -> None:
    """82% churn base rate (real purchase data): a model that ranks well passes, although
    its PR AUC / base rate (1.10) can never reach the old fixed lift of 1.2."""
    model, recency = m(0.82, 0.74, 0.90), m(0.82, 0.70, 0.87)
    assert model.pr_auc / model.base_rate < 1.2
    assert first_champion_shortfalls(model, recency, ChurnGate()) == []
    assert abs(pr_auc_skill(model) - (0.90 - 0.82) / 0.18) < 1e-12


def test_low_base_rate_model_passes() -> None:
    assert first_champion_shortfalls(m(0.05, 0.80, 0.20), m(0.05, 0.70, 0.12), ChurnGate()) == []


def test_no_better_than_baselines_is_refused_with_what_would_pass() -> None:
    coin = first_champion_shortfalls(m(0.82, 0.52, 0.825), m(0.82, 0.50, 0.82), ChurnGate())
    assert any("min_roc_auc 0.6" in r for r in coin)
    assert any("min_pr_auc_skill" in r and "needs PR AUC >= 0.829" in r for r in coin)
    worse = first_champion_shortfalls(m(0.3, 0.70, 0.55), m(0.3, 0.75, 0.6), ChurnGate())
    assert worse and "recency-only 0.750" in worse[0]


def test_challenger_needs_margin_and_no_worse_brier() -> None:
    g = ChurnGate()
    assert beats_champion(m(0.5, 0.8, 0.72, 0.14), m(0.5, 0.8, 0.70, 0.15), g) == []
    assert beats_champion(m(0.5, 0.8, 0.705, 0.14), m(0.5, 0.8, 0.70, 0.15), g)
    assert beats_champion(m(0.5, 0.8, 0.75, 0.16), m(0.5, 0.8, 0.70, 0.15), g)
