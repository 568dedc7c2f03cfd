"""Assign every person of a snapshot to a segment with the champion model; record the
share drift against training (ops.segment_drift)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from behavior_lake.config import Settings
from behavior_lake.contracts.ml import SEGMENT_DRIFT, USER_SEGMENTS
from behavior_lake.lake import Lake, Where
from behavior_lake.lake.base import spec_rows
from behavior_lake.ml import tracking
from behavior_lake.ml.segments import (
    SEGMENT_COL,
    SERVED_COL,
    share_psi,
    shares_of,
)
from behavior_lake.ml.snapshots import (
    CHAMPION,
    FEATURES,
    check_features,
    pick_snapshot,
)

log = logging.getLogger(__name__)


@dataclass
class AssignResult:
    as_of_date: date
    persons: int
    model_version: str
    psi: float
    retrain_recommended: bool
    shares: dict[int, float]


def assign_segments(lake: Lake, settings: Settings, as_of: date | None = None) -> AssignResult:
    """Score a snapshot with the champion, replace its rows, record the share drift."""
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
    scored = segment_rows(model, feats, names, cfg.model_name, str(mv.version), cfg.features)
    lake.ensure(USER_SEGMENTS.name)
    res = lake.overwrite(USER_SEGMENTS.name, scored, where=Where.eq("as_of_date", day))
    written = lake.read(USER_SEGMENTS.name).filter(F.col("as_of_date") == F.lit(day))
    shares = shares_of(written, sorted(train_shares))
    psi = share_psi(shares, train_shares)
    retrain = psi > cfg.drift_psi_threshold
    row = (
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
    lake.ensure(SEGMENT_DRIFT.name)
    lake.overwrite(
        SEGMENT_DRIFT.name,
        spec_rows(lake.spark, SEGMENT_DRIFT, [row], stamp="computed_at"),
        where=(
            Where.eq("as_of_date", day)
            & Where.eq("model_name", cfg.model_name)
            & Where.eq("model_version", str(mv.version))
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


def segment_rows(
    model, feats: DataFrame, names: dict[int, str], model_name: str, version: str, features
) -> DataFrame:
    """gold.user_segments rows: each person's published segment id and its name. The
    model maps its clusters to published ids in its last stage (`prediction`); a model
    registered before stable ids has none and its clusters are the published ids."""
    name_map = F.create_map(*[x for i, n in sorted(names.items()) for x in (F.lit(i), F.lit(n))])
    scored = model.transform(feats.select("person_id", "as_of_date", *features))
    published = SERVED_COL if SERVED_COL in scored.columns else SEGMENT_COL
    return (
        scored.select("person_id", "as_of_date", F.col(published).cast("int").alias("segment_id"))
        .withColumn("segment_name", F.coalesce(name_map[F.col("segment_id")], F.lit("unnamed")))
        .withColumn("model_name", F.lit(model_name))
        .withColumn("model_version", F.lit(version))
        .withColumn("scored_at", F.current_timestamp())
        .select(*USER_SEGMENTS.schema.fieldNames())
    )
