"""Score eligible persons with the champion (and the challenger in shadow mode)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from behavior_lake.config import Settings
from behavior_lake.contracts.ml import (
    CHURN_SCORES,
    CHURN_SCORES_SHADOW,
    MODEL_MONITORING,
    SCORING_REJECTS,
    SHADOW_COMPARISON,
)
from behavior_lake.lake import Lake, LakeError, Where
from behavior_lake.lake.base import spec_rows
from behavior_lake.ml import tracking
from behavior_lake.ml.churn import (
    PROB,
    capacity_for,
    probability,
    restricted_mean_days,
    spearman,
    survival_at,
    survival_shape,
)
from behavior_lake.ml.churn_data import CHALLENGER, CHAMPION, NoChampionError, feature_list
from behavior_lake.ml.churn_monitor import monitor
from behavior_lake.ml.snapshots import FEATURES, snapshot_dates
from behavior_lake.spark import cache_scope

log = logging.getLogger(__name__)


@dataclass
class ScoreResult:
    as_of_date: date
    scored: int
    rejected: int
    model_version: str
    shadow_version: str | None = None
    rank_correlation: float | None = None
    top_overlap: float | None = None
    monitored: list[date] = field(default_factory=list)


def _valid_rows(df: DataFrame, features: list[str]) -> tuple[DataFrame, DataFrame]:
    """Malformed rows (NaN/inf in a feature, or null where a feature is never null) are
    set aside with the reason instead of being scored as zeros."""
    never_null = ["recency_days_event", "tenure_days", "engagement_score"]
    checks = []
    for c in features:
        v = F.col(c).cast("double")
        checks.append(
            F.when(F.isnan(v) | (F.abs(v) == float("inf")), F.lit(f"{c}: not a finite number"))
        )
    for c in never_null:
        if c in df.columns:
            checks.append(F.when(F.col(c).isNull(), F.lit(f"{c}: null")))
    reason = F.concat_ws("; ", *checks) if checks else F.lit("")
    tagged = df.withColumn("_reason", reason)
    return tagged.filter(F.col("_reason") == "").drop("_reason"), tagged.filter(
        F.col("_reason") != ""
    )


def score_churn(
    lake: Lake, settings: Settings, as_of: date | None = None, shadow: bool | None = None
) -> ScoreResult:
    """Plan (snapshot, champion, eligible rows) -> score -> write; shadow scores and the
    comparison; then monitoring of past scores whose labels matured."""
    cfg = settings.churn
    day = _scoring_day(lake, as_of)
    tracking.configure(settings.mlflow, settings.mlflow.churn_experiment)
    champ = _champion(cfg.model_name)
    good, bad = _valid_rows(_eligible(lake, settings, day), feature_list(lake, settings))
    for spec in (CHURN_SCORES, CHURN_SCORES_SHADOW, SHADOW_COMPARISON, SCORING_REJECTS):
        lake.ensure(spec.name)
    lake.ensure(MODEL_MONITORING.name)
    with cache_scope(settings) as caches:
        good = caches.keep(good)
        n = good.count()
        rejected = _reject(lake, bad, day, cfg.model_name, str(champ.version))
        cap = capacity_for(n, cfg)
        log.info(
            "churn: scoring %d eligible persons of %s with v%s (%d set aside)",
            n, day, champ.version, rejected,
        )  # fmt: skip
        scores = caches.keep(
            _scores(lake, good, cfg.model_name, champ, day, cap, cfg.survival_window_days)
        )
        res_w = lake.overwrite(CHURN_SCORES.name, scores, where=Where.eq("as_of_date", day))
        out = ScoreResult(day, res_w.rows_written, rejected, str(champ.version))
        if cfg.shadow if shadow is None else shadow:
            _shadow(lake, settings, good, scores, champ, day, cap, n, out, caches)
    out.monitored = monitor(lake, settings)
    return out


def _scoring_day(lake: Lake, as_of: date | None) -> date:
    have = snapshot_dates(lake)
    if not have:
        raise LakeError(f"{FEATURES} has no snapshot yet: run gold_features first")
    day = as_of or have[-1]
    if day not in have:
        raise LakeError(f"--as-of {day}: no {FEATURES} snapshot for that date")
    return day


def _champion(model_name: str):
    try:
        return tracking.version_by_alias(model_name, CHAMPION)
    except tracking.ModelNotFoundError:
        raise NoChampionError(
            f"no scores: {model_name} has no '{CHAMPION}' version yet (train_churn "
            "logs what the latest challenger needs to pass churn.gate)"
        ) from None


def _eligible(lake: Lake, settings: Settings, day: date) -> DataFrame:
    """The snapshot's persons active in the look-back window."""
    cfg = settings.churn
    snap = lake.read(FEATURES).filter(F.col("as_of_date") == F.lit(day))
    window = f"active_days_{cfg.lookback_days}d"
    if window not in snap.columns:
        raise ValueError(
            f"churn.lookback_days={cfg.lookback_days}: gold.user_features has no {window} "
            "(add it to gold.features.windows_days)"
        )
    return snap.filter(F.col(window) > 0)


def _shadow(lake, settings, good, scores, champ, day, cap, n, out: ScoreResult, caches) -> None:
    """Score the same persons with the challenger and compare it with the champion."""
    cfg = settings.churn
    try:
        chal = tracking.version_by_alias(cfg.model_name, CHALLENGER)
    except tracking.ModelNotFoundError:
        chal = None
    if chal is None or chal.version == champ.version:
        log.info("churn: shadow mode: no challenger different from the champion")
        return
    sh = caches.keep(_scores(lake, good, cfg.model_name, chal, day, cap, cfg.survival_window_days))
    lake.overwrite(CHURN_SCORES_SHADOW.name, sh, where=Where.eq("as_of_date", day))
    rho = spearman(scores, sh)
    both = (
        scores.filter("in_capacity")
        .select("person_id")
        .join(sh.filter("in_capacity").select("person_id"), "person_id")
        .count()
    )
    overlap = both / cap if cap else float("nan")
    row = (day, cfg.model_name, str(champ.version), str(chal.version), n, float(rho), cap,
           float(overlap))  # fmt: skip
    lake.overwrite(
        SHADOW_COMPARISON.name,
        spec_rows(lake.spark, SHADOW_COMPARISON, [row], "compared_at"),
        where=Where.eq("as_of_date", day),
    )
    out.shadow_version, out.rank_correlation, out.top_overlap = str(chal.version), rho, overlap
    log.info(
        "churn: shadow v%s vs champion v%s: rank correlation %.3f, top-%d overlap %.1f%%",
        chal.version, champ.version, rho, cap, 100 * overlap,
    )  # fmt: skip


def _reject(lake: Lake, bad: DataFrame, day: date, name: str, version: str) -> int:
    rows = bad.select(
        "person_id",
        "as_of_date",
        F.lit(name).alias("model_name"),
        F.lit(version).alias("model_version"),
        F.col("_reason").alias("reason"),
        F.current_timestamp().alias("rejected_at"),
    )
    res = lake.overwrite(
        SCORING_REJECTS.name,
        rows,
        where=Where.eq("as_of_date", day) & Where.eq("model_name", name),
    )
    if res.rows_written:
        log.warning(
            "churn: %d malformed feature rows set aside in %s",
            res.rows_written,
            SCORING_REJECTS.name,
        )
    return res.rows_written


def _scores(
    lake: Lake, good: DataFrame, name: str, mv, day: date, cap: int, window: int
) -> DataFrame:
    model = tracking.load_spark_model(name, mv.version)
    scored = probability(model, good).select("person_id", "as_of_date", PROB, "recency_days_event")
    expected = survival = F.lit(None).cast("double")
    if (mv.tags or {}).get("survival") == "true":  # set by train_churn
        import mlflow.spark

        surv = mlflow.spark.load_model(f"runs:/{mv.run_id}/survival_model")
        col, shape = survival_shape(surv)
        scored = surv.transform(
            scored.join(good, ["person_id", "as_of_date", "recency_days_event"])
        )
        expected = restricted_mean_days(F.col(col), shape, window)
        survival = survival_at(F.col(col), shape, window)
    else:
        log.info("churn: v%s has no survival model: expected_active_days left null", mv.version)
    from pyspark.sql import Window

    order = Window.partitionBy(F.lit(1)).orderBy(F.desc(PROB), F.asc("person_id"))
    return scored.select(
        "person_id",
        "as_of_date",
        F.col(PROB).cast("double").alias(PROB),
        (11 - F.ntile(10).over(Window.partitionBy(F.lit(1)).orderBy(PROB, F.desc("person_id")))).cast("int").alias("risk_decile"),
        (F.row_number().over(order) <= cap).alias("in_capacity"),
        expected.cast("double").alias("expected_active_days"),
        F.lit(str(mv.version)).alias("model_version"),
        F.current_timestamp().alias("scored_at"),
        survival.cast("double").alias("survival_probability"),
        F.lit(window).cast("int").alias("survival_window_days"),
    )  # fmt: skip
