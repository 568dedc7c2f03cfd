"""Train (MLflow-tracked, gated) and assign behavioral segments."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from behavior_lake.config import Settings
from behavior_lake.contracts.ml import SEGMENT_DRIFT, USER_SEGMENTS
from behavior_lake.lake import Lake, LakeError
from behavior_lake.lake.base import spec_rows
from behavior_lake.ml import cached_for_training, plots, tracking
from behavior_lake.ml.segments import (
    NAMING_RULES,
    SEGMENT_COL,
    choose_k,
    fit_range,
    gate,
    profiles,
    segment_names,
    share_psi,
    shares_of,
    stability,
)

log = logging.getLogger(__name__)
FEATURES = "gold.user_features"
CHAMPION = "champion"


def snapshot_dates(lake: Lake) -> list[date]:
    if not lake.exists(FEATURES):
        return []
    return sorted(r[0] for r in lake.read(FEATURES).select("as_of_date").distinct().collect())


def pick_snapshot(lake: Lake, as_of: date | None) -> date:
    have = snapshot_dates(lake)
    if not have:
        raise LakeError(f"{FEATURES} has no snapshot yet: run gold_features first")
    if as_of is None:
        return have[-1]
    if as_of not in have:
        raise LakeError(
            f"--as-of {as_of}: no {FEATURES} snapshot for that date "
            f"(have {', '.join(str(d) for d in have[-5:])}{' ...' if len(have) > 5 else ''})"
        )
    return as_of


def catalog_fills(lake: Lake) -> dict[str, float]:
    """The documented imputation values, read from gold.feature_catalog."""
    if not lake.exists("gold.feature_catalog"):
        return {}
    rows = lake.read("gold.feature_catalog").select("feature", "impute_value").collect()
    return {r.feature: r.impute_value for r in rows if r.impute_value is not None}


def check_features(df: DataFrame, wanted: list[str], key: str) -> None:
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise ValueError(
            f"{key}: feature(s) {missing} are not columns of {FEATURES}; expected names "
            "from gold.feature_catalog"
        )


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


def train_segments(lake: Lake, settings: Settings, as_of: date | None = None) -> SegmentTrainResult:
    import mlflow

    cfg = settings.segments
    if cfg.k_min < 2 or cfg.k_max < cfg.k_min:
        raise ValueError(
            f"segments.k_min/k_max: expected 2 <= k_min <= k_max, got {cfg.k_min}..{cfg.k_max}"
        )
    day = pick_snapshot(lake, as_of)
    feats = lake.read(FEATURES)
    check_features(feats, list(cfg.features), "segments.features")
    check_features(feats, list(cfg.log_features), "segments.log_features")
    fills = catalog_fills(lake)
    cols = ["person_id", *cfg.features]
    train, persons = cached_for_training(
        feats.filter(F.col("as_of_date") == F.lit(day)).select(*cols),
        settings.spark.ml_single_partition_max_rows,
    )
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
    tracking.configure(settings.mlflow, settings.mlflow.segments_experiment)
    t0 = time.monotonic()
    with mlflow.start_run(run_name=f"segments-{day}") as run:
        results = fit_range(train, cfg, fills, settings.spark.ml_parallelism)
        best, reason_k = choose_k(results, cfg.min_segment_share)
        pred = best.model.transform(train).cache()
        base = pred.select("person_id", SEGMENT_COL)
        stab = stability(train, base, cfg, best.k, fills, previous, settings.spark.ml_parallelism)
        profs = profiles(pred, cfg)
        names = segment_names(profs, cfg.names)
        passed, reasons = gate(best.silhouette, stab.stability_ari, reason_k, cfg)
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
        for r in results:
            mlflow.log_metric("silhouette_by_k", r.silhouette, step=r.k)
            mlflow.log_metric(f"silhouette_k{r.k}", r.silhouette)
        metrics = {
            "chosen_k": best.k,
            "silhouette": best.silhouette,
            "stability_ari": stab.stability_ari,
            "min_segment_share": best.min_share,
            "gate_passed": float(passed),
        }
        for i, a in enumerate(stab.bootstrap_ari):
            metrics[f"bootstrap_ari_{i}"] = a
        if stab.previous_window_ari is not None:
            metrics["previous_window_ari"] = stab.previous_window_ari
        for p in profs:
            metrics[f"segment_size_{p['segment_id']}"] = p["size"]
            metrics[f"segment_share_{p['segment_id']}"] = p["share"]
        mlflow.log_metrics(metrics)
        _log_artifacts(results, best.k, profs, names, cfg, day, stab, passed, reasons)
        version = tracking.log_spark_model(best.model, cfg.model_name)
        client = mlflow.MlflowClient()
        client.set_model_version_tag(cfg.model_name, version.version, "as_of_date", str(day))
        client.set_model_version_tag(
            cfg.model_name, version.version, "gate", "passed" if passed else "failed"
        )
        if passed:
            tracking.set_alias(cfg.model_name, CHAMPION, version.version)
            log.info(
                "segments: %s version %s passed the gate -> alias %s",
                cfg.model_name,
                version.version,
                CHAMPION,
            )
        else:
            client.set_model_version_tag(
                cfg.model_name, version.version, "gate_reasons", "; ".join(reasons)
            )
            log.warning(
                "segments: %s version %s stays a candidate (not champion): %s",
                cfg.model_name,
                version.version,
                "; ".join(reasons),
            )
        mlflow.set_tag("gate", "passed" if passed else "failed")
        pred.unpersist()
        train.unpersist()
    log.info(
        "segments: k=%d silhouette=%.3f stability_ari=%.3f in %.1fs (run %s)",
        best.k,
        best.silhouette,
        stab.stability_ari,
        time.monotonic() - t0,
        run.info.run_id,
    )
    return SegmentTrainResult(
        as_of_date=day,
        persons=persons,
        k=best.k,
        silhouette=best.silhouette,
        stability_ari=stab.stability_ari,
        passed=passed,
        reasons=reasons,
        model_version=str(version.version),
        run_id=run.info.run_id,
        names=names,
        silhouettes={r.k: r.silhouette for r in results},
    )


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


# ----------------------------------------------------------------------------- assign


@dataclass
class AssignResult:
    as_of_date: date
    persons: int
    model_version: str
    psi: float
    retrain_recommended: bool
    shares: dict[int, float]


def assign_segments(lake: Lake, settings: Settings, as_of: date | None = None) -> AssignResult:
    cfg = settings.segments
    day = pick_snapshot(lake, as_of)
    tracking.configure(settings.mlflow, settings.mlflow.segments_experiment)
    mv = tracking.version_by_alias(cfg.model_name, CHAMPION)
    profile = tracking.download_json(mv.run_id, "segment_profile.json")
    names = {int(p["segment_id"]): p["segment_name"] for p in profile}
    train_shares = {int(p["segment_id"]): float(p["share"]) for p in profile}
    log.info("segments: scoring %s with %s v%s (champion)", day, cfg.model_name, mv.version)
    model = tracking.load_spark_model(cfg.model_name, mv.version)
    feats = lake.read(FEATURES).filter(F.col("as_of_date") == F.lit(day))
    check_features(feats, list(cfg.features), "segments.features")
    name_map = F.create_map(*[x for i, n in sorted(names.items()) for x in (F.lit(i), F.lit(n))])
    scored = (
        model.transform(feats.select("person_id", "as_of_date", *cfg.features))
        .select(
            "person_id",
            "as_of_date",
            F.col(SEGMENT_COL).cast("int").alias("segment_id"),
        )
        .withColumn("segment_name", F.coalesce(name_map[F.col("segment_id")], F.lit("unnamed")))
        .withColumn("model_name", F.lit(cfg.model_name))
        .withColumn("model_version", F.lit(str(mv.version)))
        .withColumn("scored_at", F.current_timestamp())
    )
    lake.ensure(USER_SEGMENTS.name)
    res = lake.overwrite(
        USER_SEGMENTS.name,
        scored.select(*USER_SEGMENTS.schema.fieldNames()),
        where=f"as_of_date = DATE'{day.isoformat()}'",
    )
    written = lake.read(USER_SEGMENTS.name).filter(F.col("as_of_date") == F.lit(day))
    shares = shares_of(written, len(train_shares))
    psi = share_psi(shares, train_shares)
    retrain = psi > cfg.drift_psi_threshold
    drift = spec_rows(
        lake.spark,
        SEGMENT_DRIFT,
        [
            (
                day,
                cfg.model_name,
                str(mv.version),
                res.rows_written,
                float(psi),
                {int(k): float(v) for k, v in shares.items()},
                train_shares,
                float(cfg.drift_psi_threshold),
                retrain,
            )
        ],
        stamp="computed_at",
    )
    lake.ensure(SEGMENT_DRIFT.name)
    lake.overwrite(
        SEGMENT_DRIFT.name,
        drift,
        where=(
            f"as_of_date = DATE'{day.isoformat()}' AND model_name = '{cfg.model_name}' "
            f"AND model_version = '{mv.version}'"
        ),
    )
    if retrain:
        log.warning(
            "segments: share PSI %.3f > %.2f vs training: retrain recommended",
            psi,
            cfg.drift_psi_threshold,
        )
    log.info("segments: %d persons scored for %s (PSI %.3f)", res.rows_written, day, psi)
    return AssignResult(day, res.rows_written, str(mv.version), psi, retrain, shares)
