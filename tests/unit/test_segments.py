"""Segmentation building blocks: ARI, k choice, naming, drift PSI, gate, pipeline."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import pytest
from pyspark.sql import SparkSession
from sklearn.metrics import adjusted_rand_score

from behavior_lake.config import SegmentGate, SegmentSettings
from behavior_lake.ml.segments import (
    SEGMENT_COL,
    KResult,
    adjusted_rand_index,
    ari_between,
    choose_k,
    clip_bounds,
    derive_name,
    fit_range,
    gate,
    make_pipeline,
    segment_names,
    share_psi,
)


def contingency(a: list[int], b: list[int]) -> dict[tuple[int, int], int]:
    out: dict[tuple[int, int], int] = {}
    for x, y in zip(a, b, strict=True):
        out[(x, y)] = out.get((x, y), 0) + 1
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ari_matches_reference_implementation(seed: int) -> None:
    rng = random.Random(seed)
    a = [rng.randrange(4) for _ in range(300)]
    b = [x if rng.random() < 0.6 else rng.randrange(5) for x in a]
    assert adjusted_rand_index(contingency(a, b)) == pytest.approx(adjusted_rand_score(a, b))


def test_ari_known_values() -> None:
    assert adjusted_rand_index(contingency([0, 0, 1, 1], [5, 5, 7, 7])) == 1.0  # relabeled
    # the classic example: one true class split in two
    got = adjusted_rand_index(contingency([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2]))
    assert got == pytest.approx(0.24242424, abs=1e-6)


def _k(k: int, sil: float, smallest: float) -> KResult:
    shares = {i: (1 - smallest) / (k - 1) for i in range(1, k)} | {0: smallest}
    return KResult(k, sil, shares, model=None)  # type: ignore[arg-type]


def test_choose_k_respects_min_share() -> None:
    results = [_k(3, 0.40, 0.20), _k(4, 0.55, 0.01), _k(5, 0.45, 0.05)]
    best, why = choose_k(results, 0.02)
    assert best.k == 5 and why is None  # k=4 scores best but has a 1% segment
    best, why = choose_k(results, 0.30)
    assert best.k == 4 and "30.0%" in why


def test_gate_reasons() -> None:
    cfg = SegmentSettings(gate=SegmentGate(min_silhouette=0.3, min_stability_ari=0.6))
    assert gate(0.5, 0.9, None, cfg) == (True, [])
    ok, why = gate(0.2, 0.5, None, cfg)
    assert not ok and len(why) == 2 and "silhouette 0.200 < gate.min_silhouette 0.3" in why[0]
    ok, why = gate(0.5, float("nan"), None, cfg)  # no stability measured: never passes
    assert not ok and "stability_ari" in why[0]


def test_naming_rules_and_overrides() -> None:
    assert derive_name({"orders_30d": 1, "revenue_30d": 1, "sessions_30d": 1}) == (
        "high-value frequent buyers"
    )
    assert derive_name({"orders_30d": 1, "revenue_30d": 1}) == "high-value occasional buyers"
    assert derive_name({"recency_days_event": 1, "sessions_30d": -1}) == (
        "lapsing low-activity users"
    )
    assert derive_name({"tenure_days": -1}) == "new users"
    assert derive_name({}) == "occasional visitors"
    profs = [
        {"segment_id": 0, "size": 10, "z": {}},
        {"segment_id": 1, "size": 30, "z": {}},
        {"segment_id": 2, "size": 20, "z": {"tenure_days": -2}},
    ]
    names = segment_names(profs, {"new users": "Newcomers"})
    assert names == {1: "occasional visitors", 0: "occasional visitors (2)", 2: "Newcomers"}


def test_share_psi() -> None:
    assert share_psi({0: 0.5, 1: 0.5}, {0: 0.5, 1: 0.5}) == 0.0
    want = (0.7 - 0.5) * math.log(0.7 / 0.5) + (0.3 - 0.5) * math.log(0.3 / 0.5)
    assert share_psi({0: 0.7, 1: 0.3}, {0: 0.5, 1: 0.5}) == pytest.approx(want)


def test_pipeline_recovers_planted_blobs(spark: SparkSession) -> None:
    """Three well separated groups of persons (one with missing values): k=3, ARI 1."""
    rng = random.Random(5)
    centers = {0: (2.0, 50.0, 0.1), 1: (40.0, 5.0, 0.5), 2: (300.0, 1.0, 0.9)}
    rows = []
    for i in range(150):
        g = i % 3
        ev, rec, bounce = centers[g]
        rows.append(
            (
                f"p{i}",
                g,
                ev * rng.uniform(0.8, 1.2),
                rec * rng.uniform(0.8, 1.2),
                None if g == 0 and i % 2 else bounce + rng.uniform(-0.05, 0.05),
            )
        )
    df = spark.createDataFrame(
        rows, "person_id string, truth int, events_30d double, recency double, bounce double"
    )
    cfg = SegmentSettings(
        k_min=2,
        k_max=4,
        features=["events_30d", "recency", "bounce"],
        log_features=["events_30d"],
        max_iter=20,
    )
    results = fit_range(df, cfg, {"bounce": 0.1}, parallelism=3)
    # fits side by side give exactly what one after the other gives
    one_by_one = fit_range(df, cfg, {"bounce": 0.1}, parallelism=1)
    summary = lambda rs: [(r.k, r.silhouette, r.shares) for r in rs]  # noqa: E731
    assert summary(results) == summary(one_by_one) and [r.k for r in results] == [2, 3, 4]
    best, why = choose_k(results, 0.05)
    assert best.k == 3 and why is None and best.silhouette > 0.6
    pred = best.model.transform(df)
    truth = df.select("person_id", df.truth.alias(SEGMENT_COL))
    assert ari_between(pred, truth) == pytest.approx(1.0)
    bisect = replace(cfg, algorithm="bisecting_kmeans", k_min=3, k_max=3)
    model = fit_range(df, bisect, {"bounce": 0.1})[0].model
    assert ari_between(model.transform(df), truth) == pytest.approx(1.0)


def test_winsorizing_clips_to_training_quantiles_and_keeps_nulls(spark: SparkSession) -> None:
    rows = [(f"p{i}", float(i), None if i == 7 else 1.0) for i in range(100)]
    rows.append(("outlier", 1e6, 1.0))
    df = spark.createDataFrame(rows, "person_id string, x double, y double")
    cfg = SegmentSettings(k_min=2, k_max=2, features=["x", "y"], log_features=[], max_iter=5)
    bounds = clip_bounds(df, cfg, {})
    assert bounds["x"][0] <= 1.0 and 98.0 <= bounds["x"][1] < 1e6
    model = make_pipeline(cfg, 2, {}, bounds).fit(df)
    got = {r["person_id"]: (r["x__f"], r["y__f"]) for r in model.transform(df).collect()}
    assert got["outlier"][0] == bounds["x"][1]  # clipped to the 99% quantile
    assert got["p50"][0] == 50.0  # inside the bounds: unchanged
    assert got["p7"][1] == 1.0  # missing: imputed by the median, not turned into a bound
    off = clip_bounds(df, replace(cfg, winsorize_quantile=0.0), {})
    assert off == {}
