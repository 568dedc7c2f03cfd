"""Train the behavioral segmentation (MLflow-tracked) and gate it to champion."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from behavior_lake.config import Settings
from behavior_lake.lake import Lake, LakeError
from behavior_lake.ml import cached_for_training, plots, tracking
from behavior_lake.ml.segments import (
    NAMING_RULES,
    SEGMENT_COL,
    choose_k,
    fit_range,
    gate,
    profiles,
    segment_names,
    stability,
)
from behavior_lake.ml.snapshots import (
    CHAMPION,
    FEATURES,
    catalog_fills,
    check_features,
    pick_snapshot,
)
from behavior_lake.spark import Caches, cache_scope

log = logging.getLogger(__name__)


@dataclass
class SegmentTrainResult:
    as_of_date: date
    persons: int
    k: int
    silhouette: float
    stability_ari: float
    passed: bool
    reasons: list[str]
    model_version: str
    run_id: str
    names: dict[int, str]
    silhouettes: dict[int, float] = field(default_factory=dict)


@dataclass
class SegmentFit:
    """A fitted segmentation and everything the gate and the run record need."""

    results: list
    best: Any
    stab: Any
    profiles: list[dict]
    names: dict[int, str]
    passed: bool
    reasons: list[str]


def train_segments(lake: Lake, settings: Settings, as_of: date | None = None) -> SegmentTrainResult:
    """Plan (snapshot and training set) -> fit and gate -> MLflow run and registry."""
    import mlflow

    cfg = settings.segments
    if cfg.k_min < 2 or cfg.k_max < cfg.k_min:
        raise ValueError(
            f"segments.k_min/k_max: expected 2 <= k_min <= k_max, got {cfg.k_min}..{cfg.k_max}"
        )
    with cache_scope(settings) as caches:
        day, train, persons, previous = segment_training_set(lake, settings, as_of, caches)
        tracking.configure(settings.mlflow, settings.mlflow.segments_experiment)
        t0 = time.monotonic()
        with mlflow.start_run(run_name=f"segments-{day}") as run:
            fit = fit_segments(train, previous, catalog_fills(lake), settings, caches)
            _log_segment_run(fit, cfg, day, persons)
            version = _register_segments(fit, cfg, day, train.select(*cfg.features))
    log.info(
        "segments: k=%d silhouette=%.3f stability_ari=%.3f in %.1fs (run %s)",
        fit.best.k,
        fit.best.silhouette,
        fit.stab.stability_ari,
        time.monotonic() - t0,
        run.info.run_id,
    )
    return SegmentTrainResult(
        as_of_date=day,
        persons=persons,
        k=fit.best.k,
        silhouette=fit.best.silhouette,
        stability_ari=fit.stab.stability_ari,
        passed=fit.passed,
        reasons=fit.reasons,
        model_version=str(version),
        run_id=run.info.run_id,
        names=fit.names,
        silhouettes={r.k: r.silhouette for r in fit.results},
    )


def segment_training_set(
    lake: Lake, settings: Settings, as_of: date | None, caches: Caches
) -> tuple[date, DataFrame, int, DataFrame]:
    """The snapshot day, its training rows (cached), their count, and the previous
    snapshot's rows (for stability)."""
    cfg = settings.segments
    day = pick_snapshot(lake, as_of)
    feats = lake.read(FEATURES)
    check_features(feats, list(cfg.features), "segments.features")
    check_features(feats, list(cfg.log_features), "segments.log_features")
    cols = ["person_id", *cfg.features]
    train, persons = cached_for_training(
        feats.filter(F.col("as_of_date") == F.lit(day)).select(*cols),
        settings.spark.ml_single_partition_max_rows,
    )
    caches.track(train)
    if persons < cfg.k_max * 5:
        raise LakeError(
            f"snapshot {day} has {persons} persons: too few to fit up to "
            f"segments.k_max={cfg.k_max} segments"
        )
    prev_day = day - timedelta(days=settings.gold.features.snapshot_interval_days)
    previous = feats.filter(F.col("as_of_date") == F.lit(prev_day)).select(*cols)
    log.info(
        "segments: training %s on %d persons of %s, k in %d..%d",
        cfg.algorithm,
        persons,
        day,
        cfg.k_min,
        cfg.k_max,
    )
    return day, train, persons, previous


def fit_segments(
    train: DataFrame, previous: DataFrame, fills, settings: Settings, caches: Caches
) -> SegmentFit:
    """Fit every k, choose one, measure stability, profile and name the segments, gate."""
    cfg, par = settings.segments, settings.spark.ml_parallelism
    results = fit_range(train, cfg, fills, par)
    best, reason_k = choose_k(results, cfg.min_segment_share)
    pred = caches.track(best.model.transform(train).cache())
    base = pred.select("person_id", SEGMENT_COL)
    stab = stability(train, base, cfg, best.k, fills, previous, par)
    profs = profiles(pred, cfg)
    names = segment_names(profs, cfg.names)
    passed, reasons = gate(best.silhouette, stab.stability_ari, reason_k, cfg)
    return SegmentFit(results, best, stab, profs, names, passed, reasons)


def _log_segment_run(fit: SegmentFit, cfg, day: date, persons: int) -> None:
    import mlflow

    best, stab = fit.best, fit.stab
    mlflow.log_params(
        {
            "algorithm": cfg.algorithm,
            "k_range": f"{cfg.k_min}-{cfg.k_max}",
            "features": ",".join(cfg.features),
            "log_features": ",".join(cfg.log_features),
            "min_segment_share": cfg.min_segment_share,
            "as_of_date": str(day),
            "persons": persons,
            "seed": cfg.seed,
            "bootstrap_rounds": cfg.bootstrap_rounds,
            "gate_min_silhouette": cfg.gate.min_silhouette,
            "gate_min_stability_ari": cfg.gate.min_stability_ari,
        }
    )
    for r in fit.results:
        mlflow.log_metric("silhouette_by_k", r.silhouette, step=r.k)
        mlflow.log_metric(f"silhouette_k{r.k}", r.silhouette)
    metrics = {
        "chosen_k": best.k,
        "silhouette": best.silhouette,
        "stability_ari": stab.stability_ari,
        "min_segment_share": best.min_share,
        "gate_passed": float(fit.passed),
    }
    for i, a in enumerate(stab.bootstrap_ari):
        metrics[f"bootstrap_ari_{i}"] = a
    if stab.previous_window_ari is not None:
        metrics["previous_window_ari"] = stab.previous_window_ari
    for p in fit.profiles:
        metrics[f"segment_size_{p['segment_id']}"] = p["size"]
        metrics[f"segment_share_{p['segment_id']}"] = p["share"]
    mlflow.log_metrics(metrics)
    _log_artifacts(
        fit.results, best.k, fit.profiles, fit.names, cfg, day, stab, fit.passed, fit.reasons
    )


def _register_segments(fit: SegmentFit, cfg, day: date, example: DataFrame) -> str:
    """Register the model version (with its signature); the champion alias only through
    the gate."""
    import mlflow

    version = tracking.log_spark_model(fit.best.model, cfg.model_name, example, SEGMENT_COL)
    client = mlflow.MlflowClient()
    verdict = "passed" if fit.passed else "failed"
    client.set_model_version_tag(cfg.model_name, version.version, "as_of_date", str(day))
    client.set_model_version_tag(cfg.model_name, version.version, "gate", verdict)
    if fit.passed:
        tracking.set_alias(cfg.model_name, CHAMPION, version.version)
        log.info(
            "segments: %s version %s passed the gate -> alias %s",
            cfg.model_name,
            version.version,
            CHAMPION,
        )
    else:
        client.set_model_version_tag(
            cfg.model_name, version.version, "gate_reasons", "; ".join(fit.reasons)
        )
        log.warning(
            "segments: %s version %s stays a candidate (not champion): %s",
            cfg.model_name,
            version.version,
            "; ".join(fit.reasons),
        )
    mlflow.set_tag("gate", verdict)
    return str(version.version)


def _log_artifacts(results, k, profs, names, cfg, day, stab, passed, reasons) -> None:
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        plots.silhouette_by_k({r.k: r.silhouette for r in results}, k, d / "silhouette_by_k.png")
        rows = [f"{p['segment_id']}: {names[p['segment_id']]}" for p in profs]
        plots.heatmap(
            rows,
            list(cfg.features),
            [[p["z"][c] or 0.0 for c in cfg.features] for p in profs],
            "Centroid z-scores",
            d / "centroid_zscores.png",
        )
        profile = [{**p, "segment_name": names[p["segment_id"]]} for p in profs]
        (d / "segment_profile.json").write_text(json.dumps(profile, indent=2, default=float))
        header = ["segment_id", "segment_name", "size", "share", *cfg.features]
        lines = [",".join(header)]
        for p in profile:
            vals = [p["segment_id"], f'"{p["segment_name"]}"', p["size"], f"{p['share']:.4f}"]
            vals += [f"{(p['means'][c] or 0):.4f}" for c in cfg.features]
            lines.append(",".join(str(v) for v in vals))
        (d / "segment_profile.csv").write_text("\n".join(lines) + "\n")
        (d / "model_card.md").write_text(
            _card(cfg, day, k, results, stab, profile, passed, reasons)
        )
        mlflow.log_artifacts(str(d))


def _card(cfg, day, k, results, stab, profile, passed, reasons) -> str:
    best = next(r for r in results if r.k == k)
    seg_lines = "\n".join(
        f"| {p['segment_id']} | {p['segment_name']} | {p['size']} | {p['share']:.1%} |"
        for p in profile
    )
    return f"""# Model card: {cfg.model_name}

**What it is.** {cfg.algorithm} segmentation of persons by behavior, trained on the
gold.user_features snapshot as of {day} (only events before that date).

**Features.** {", ".join(cfg.features)}; log1p on {", ".join(cfg.log_features)}; documented
imputation from gold.feature_catalog, then median; standard scaling.

**Choice of k.** Best silhouette over k = {cfg.k_min}..{cfg.k_max} among k whose smallest
segment is at least {cfg.min_segment_share:.0%} of persons: k = {k}, silhouette
{best.silhouette:.3f}.

**Stability.** ARI between this model's assignments and refits on
{len(stab.bootstrap_ari)} bootstrap samples and on the previous snapshot:
stability_ari = {stab.stability_ari:.3f}.

**Gate.** min silhouette {cfg.gate.min_silhouette}, min stability ARI
{cfg.gate.min_stability_ari}: {"PASSED (champion)" if passed else "FAILED: " + "; ".join(reasons)}.

| segment | name | persons | share |
|---|---|---|---|
{seg_lines}

**Naming.**
{NAMING_RULES}
**Limits.** Segments describe behavior in the feature window; they are not causal and
say nothing about why persons behave so. Re-train when ops.segment_drift recommends it.
"""
