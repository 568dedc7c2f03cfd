"""Build gold.user_features for several as_of_dates in one pass (point in time: only
events before each date count; rules in feature_defs)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, timedelta

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from behavior_lake.config import FeatureSettings
from behavior_lake.gold.feature_defs import GROUPS, KEYS, FeatureDef, feature_defs
from behavior_lake.gold.feature_inputs import daily_activity, session_ngrams, session_rows

log = logging.getLogger(__name__)


def snapshot_dates(as_of: Sequence[date], interval_days: int) -> list[date]:
    """The requested dates plus, for each, the previous snapshot the lags read."""
    prev = {d - timedelta(days=interval_days) for d in as_of}
    return sorted(set(as_of) | prev)


def _aggregate(
    rows: DataFrame, dates: DataFrame, date_col: str, defs: Sequence[FeatureDef]
) -> DataFrame:
    joined = rows.join(F.broadcast(dates), F.col(date_col) < F.col("as_of_date")).withColumn(
        "age", F.datediff(F.col("as_of_date"), F.col(date_col))
    )
    return joined.groupBy(*KEYS).agg(*[d.expr.alias(d.name) for d in defs])


def build_user_features(
    events: DataFrame,
    sessions: DataFrame,
    vocabulary: DataFrame,
    as_of: Sequence[date],
    cfg: FeatureSettings,
    categories: Sequence[str],
    ngrams: DataFrame | None = None,
) -> DataFrame:
    """gold.user_features rows for every date in `as_of` (lags computed alongside)."""
    spark: SparkSession = events.sparkSession
    defs = feature_defs(cfg, categories)
    by_group = {g: [d for d in defs if d.group == g] for g in GROUPS}
    dates = snapshot_dates(as_of, cfg.snapshot_interval_days)
    dates_df = spark.createDataFrame([(d,) for d in dates], "as_of_date date")
    days = daily_activity(events, categories, cfg.platforms)
    feats = _aggregate(days, dates_df, "event_date", by_group["days"])
    sess = _aggregate(session_rows(sessions), dates_df, "s_date", by_group["sessions"])
    if ngrams is None:
        ngrams = session_ngrams(events, cfg.path_ngram_sizes)
    counted = (
        ngrams.join(F.broadcast(vocabulary.select("ngram", "slot")), "ngram")
        .groupBy("person_id", "ngram_date", "slot")
        .agg(F.count(F.lit(1)).alias("n"))
    )
    paths = _aggregate(counted, dates_df, "ngram_date", by_group["ngrams"])
    wide = feats.join(sess, list(KEYS), "left").join(paths, list(KEYS), "left")
    for d in by_group["sessions"] + by_group["ngrams"]:  # left-joined: absent counts are 0
        if d.dtype == T.LongType():
            wide = wide.withColumn(d.name, F.coalesce(F.col(d.name), F.lit(0).cast("long")))
    lag_src = [d.name.removeprefix("lag_") for d in by_group["lag"]]
    prev = wide.select(
        "person_id",
        F.date_add("as_of_date", cfg.snapshot_interval_days).alias("as_of_date"),
        *[F.col(c).alias(f"p_{c}") for c in lag_src],
    )
    wanted = spark.createDataFrame([(d,) for d in sorted(set(as_of))], "as_of_date date")
    out = wide.join(F.broadcast(wanted), "as_of_date").join(prev, list(KEYS), "left")
    out = out.select(
        *KEYS,
        *[
            (F.coalesce(d.expr, F.lit(d.fill)) if d.group == "lag" else F.col(d.name))
            .cast(d.dtype)
            .alias(d.name)
            for d in defs
        ],
        F.current_timestamp().alias("computed_at"),
    )
    return out


def impute(features: DataFrame, defs: Sequence[FeatureDef]) -> DataFrame:
    """Apply each feature's documented imputation (its `fill`) to nulls."""
    fills = {d.name: d.fill for d in defs if d.fill is not None}
    return features.fillna({k: v for k, v in fills.items() if k in features.columns})
