"""Churn inputs: labeled training rows, the feature list, the last event date."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from behavior_lake.config import Settings
from behavior_lake.contracts.silver import EVENTS
from behavior_lake.lake import Lake, LakeError
from behavior_lake.ml.churn import (
    active_days,
    complete_cutoffs,
    default_features,
    labels,
)
from behavior_lake.ml.snapshots import FEATURES, snapshot_dates

log = logging.getLogger(__name__)


class NoChampionError(LakeError):
    """Scoring asked for, but no model version has passed the gate."""


CHAMPION, CHALLENGER = "champion", "challenger"
KINDS = ("logistic_regression", "gbt")
NUMERIC = (T.IntegerType, T.LongType, T.DoubleType, T.FloatType, T.DecimalType)
C_INDEX_SAMPLE = 3000


def last_event(lake: Lake) -> date:
    d = lake.read(EVENTS).agg(F.max("event_date")).first()[0]
    if d is None:
        raise LakeError("silver.events is empty: nothing to label")
    return d


def feature_list(lake: Lake, settings: Settings) -> list[str]:
    schema = lake.schema(FEATURES)
    numeric = {f.name for f in schema.fields if isinstance(f.dataType, NUMERIC)}
    feats = default_features(schema.fieldNames(), numeric, settings.churn)
    missing = [c for c in feats if c not in numeric]
    if missing:
        raise ValueError(
            f"churn.features: {missing} are not numeric columns of {FEATURES}; expected "
            "names from gold.feature_catalog"
        )
    return feats


def training_set(
    lake: Lake, settings: Settings, days: DataFrame | None = None
) -> tuple[DataFrame, list[date], date]:
    """Labeled rows (features as of each complete cutoff + churned). `days`: the
    persons' active days (`active_days` of silver.events) when the caller has them."""
    cfg = settings.churn
    last = last_event(lake)
    cuts = complete_cutoffs(snapshot_dates(lake), last, cfg)
    if len(cuts) < 2:
        raise LakeError(
            f"churn needs at least 2 gold.user_features snapshots whose horizon "
            f"(churn.horizon_days={cfg.horizon_days}) is complete before the last event "
            f"({last}); have {len(cuts)}. Build earlier snapshots (gold_features "
            "--from-date) or lower churn.horizon_days"
        )
    if days is None:
        days = active_days(lake.read(EVENTS))
    lab = labels(days, cuts, cfg)
    feats = lake.read(FEATURES).filter(F.col("as_of_date").isin(cuts))
    return feats.join(lab, ["person_id", "as_of_date"]), cuts, last


def replace_max(cfg):
    """Monitoring looks at every scored date, not only the newest max_cutoffs."""
    return replace(cfg, max_cutoffs=10_000)
