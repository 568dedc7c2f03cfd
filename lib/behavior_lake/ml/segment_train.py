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
from behavior_lake.ml.segment_align import Alignment, align
from behavior_lake.ml.segments import (
    NAMING_RULES,
    SEGMENT_COL,
    SERVED_COL,
    ari_between,
    choose_k,
    fit_range,
    gate,
    profiles,
    segment_names,
    stability,
    with_published_ids,
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
    names: dict[int, str]  # published segment id -> name
    passed: bool
    reasons: list[str]
    alignment: Alignment | None = None
    champion_ari: float | None = None

    def published_profiles(self) -> list[dict]:
        """The profiles under their published ids and names; `cluster` = the model's
        own cluster number (gold.user_segments maps it through this)."""
        ids = self.alignment.ids if self.alignment else {}
        out = []
        for p in self.profiles:
            sid = ids.get(p["segment_id"], p["segment_id"])
            out.append({**p, "cluster": p["segment_id"], "segment_id": sid,
                        "segment_name": self.names[sid]})  # fmt: skip
        return sorted(out, key=lambda p: p["segment_id"])


@dataclass
class Champion:
    """The current champion: its version, published profile and model (None: none yet)."""

    version: str | None = None
    profile: list[dict] = field(default_factory=list)
    model: Any = None


def current_champion(cfg) -> Champion:
    try:
        mv = tracking.version_by_alias(cfg.model_name, CHAMPION)
    except tracking.ModelNotFoundError:
        return Champion()
    profile = tracking.download_json(mv.run_id, "segment_profile.json")
    return Champion(str(mv.version), profile, tracking.load_spark_model(cfg.model_name, mv.version))


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
        champion = current_champion(cfg)
        with mlflow.start_run(run_name=tracking.unique_run_name(f"segments-{day}")) as run:
            fit = fit_segments(train, previous, catalog_fills(lake), settings, caches, champion)
            _log_segment_run(fit, cfg, day, persons)
            tracking.log_table_inputs(lake, [(FEATURES, "training", {"snapshot": str(day)})])
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
    train: DataFrame,
    previous: DataFrame,
    fills,
    settings: Settings,
    caches: Caches,
    champion: Champion | None = None,
) -> SegmentFit:
    """Fit every k, choose one, measure stability, profile the segments, align their ids
    and names with the champion's, gate (quality, stability, agreement with the champion)."""
    cfg, par = settings.segments, settings.spark.ml_parallelism
    champion = champion or Champion()
    results = fit_range(train, cfg, fills, par)
    best, reason_k = choose_k(results, cfg.min_segment_share)
    pred = caches.track(best.model.transform(train).cache())
    base = pred.select("person_id", SEGMENT_COL)
    stab = stability(train, base, cfg, best.k, fills, previous, par)
    profs = profiles(pred, cfg)
    derived = segment_names(profs, cfg.names)
    al = align(profs, derived, champion.profile, list(cfg.features), cfg.rename_shift,
               champion.version)  # fmt: skip
    for change in al.changes:
        log.warning("segments: %s", change)
    passed, reasons = gate(best.silhouette, stab.stability_ari, reason_k, cfg)
    champion_ari = None
    if champion.model is not None:
        try:
            champion_ari = ari_between(base, champion.model.transform(train))
        except Exception as exc:  # the champion was fitted on other features
            log.warning("segments: champion v%s cannot score this snapshot (%s): no agreement "
                        "check", champion.version, str(exc).splitlines()[0])  # fmt: skip
        if champion_ari is not None and not champion_ari >= cfg.gate.min_champion_ari:
            passed = False
            reasons.append(
                f"agreement with champion v{champion.version} ARI {champion_ari:.3f} < "
                f"gate.min_champion_ari {cfg.gate.min_champion_ari}"
            )
    return SegmentFit(results, best, stab, profs, al.names, passed, reasons, al, champion_ari)


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
    if fit.champion_ari is not None:
        metrics["champion_ari"] = fit.champion_ari
    for p in fit.published_profiles():
        metrics[f"segment_size_{p['segment_id']}"] = p["size"]
        metrics[f"segment_share_{p['segment_id']}"] = p["share"]
    mlflow.log_metrics(metrics)
    _log_artifacts(fit, cfg, day)


def _register_segments(fit: SegmentFit, cfg, day: date, example: DataFrame) -> str:
    """Register the model version (with its signature); the champion alias only through
    the gate."""
    import mlflow

    ids = fit.alignment.ids if fit.alignment else {}
    served = with_published_ids(fit.best.model, ids)
    version = tracking.log_spark_model(served, cfg.model_name, example, SERVED_COL)
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
    names = ", ".join(f"{p['segment_id']} {p['segment_name']} ({p['share']:.0%})"
                      for p in fit.published_profiles())  # fmt: skip
    tracking.describe_model(
        cfg.model_name,
        version.version,
        _card(cfg, day, fit),
        f"k={fit.best.k} on the {day} snapshot, silhouette {fit.best.silhouette:.3f}, stability "
        f"ARI {fit.stab.stability_ari:.3f}; gate {verdict}"
        + (f" ({'; '.join(fit.reasons)})" if fit.reasons else "")
        + f". Segments: {names}.",
    )
    return str(version.version)


def _log_artifacts(fit: SegmentFit, cfg, day) -> None:
    import mlflow

    results, k = fit.results, fit.best.k
    profs = fit.published_profiles()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        plots.silhouette_by_k({r.k: r.silhouette for r in results}, k, d / "silhouette_by_k.png")
        rows = [f"{p['segment_id']}: {p['segment_name']}" for p in profs]
        plots.heatmap(
            rows,
            list(cfg.features),
            [[p["z"][c] or 0.0 for c in cfg.features] for p in profs],
            "Centroid z-scores",
            d / "centroid_zscores.png",
        )
        profile = profs
        if fit.alignment is not None:
            (d / "segment_alignment.json").write_text(json.dumps(fit.alignment.as_json(), indent=2))
        (d / "segment_profile.json").write_text(json.dumps(profile, indent=2, default=float))
        header = ["segment_id", "segment_name", "size", "share", *cfg.features]
        lines = [",".join(header)]
        for p in profile:
            vals = [p["segment_id"], f'"{p["segment_name"]}"', p["size"], f"{p['share']:.4f}"]
            vals += [f"{(p['means'][c] or 0):.4f}" for c in cfg.features]
            lines.append(",".join(str(v) for v in vals))
        (d / "segment_profile.csv").write_text("\n".join(lines) + "\n")
        (d / "model_card.md").write_text(_card(cfg, day, fit))
        mlflow.log_artifacts(str(d))


def _card(cfg, day, fit: SegmentFit) -> str:
    results, k, stab, passed, reasons = fit.results, fit.best.k, fit.stab, fit.passed, fit.reasons
    profile = fit.published_profiles()
    best = next(r for r in results if r.k == k)
    al = fit.alignment
    aligned = (
        f"Aligned with champion v{al.champion_version}: clusters matched to its segments by "
        f"centroid z-scores; ids kept; names kept unless a centroid moved more than "
        f"{cfg.rename_shift} (RMS z). Agreement with the champion's assignment: ARI "
        f"{fit.champion_ari:.3f} (gate {cfg.gate.min_champion_ari}). Changes: "
        + ("; ".join(al.changes) or "none")
        + "."
        if al is not None and al.champion_version and fit.champion_ari is not None
        else "First segmentation: no champion to align with."
    )
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

**Stable ids.** {aligned}

| segment | name | persons | share |
|---|---|---|---|
{seg_lines}

**Naming.**
{NAMING_RULES}
**Limits.** Segments describe behavior in the feature window; they are not causal and
say nothing about why persons behave so. Re-train when ops.segment_drift recommends it.
"""
