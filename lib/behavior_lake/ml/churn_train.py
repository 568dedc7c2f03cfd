"""Train churn models on time-ordered cutoffs, tracked in MLflow, gated champion/challenger."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import date
from functools import partial

from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from behavior_lake.config import Settings
from behavior_lake.contracts.gold import USER_FEATURES
from behavior_lake.contracts.silver import EVENTS
from behavior_lake.lake import Lake, LakeError
from behavior_lake.ml import cached_for_training, run_concurrently, tracking
from behavior_lake.ml.churn import (
    LABEL,
    PROB,
    Metrics,
    active_days,
    calibrated_column,
    concordance_index,
    curve_points,
    evaluate,
    fit_calibrator,
    fit_classifier,
    fit_survival,
    kaplan_meier,
    probability,
    raw_probability,
    survival_at,
    survival_shape,
    survival_targets,
)
from behavior_lake.ml.churn_data import C_INDEX_SAMPLE, KINDS, feature_list, training_set
from behavior_lake.ml.churn_registry import promote
from behavior_lake.ml.churn_report import log_churn_artifacts, model_card
from behavior_lake.ml.snapshots import catalog_fills
from behavior_lake.spark import Caches, cache_scope

log = logging.getLogger(__name__)

BASELINE = "recency_baseline"  # days since the last event as a score (a ranking only)
# metrics defined for a score that is a ranking but not a probability
RANK_METRICS = ("rows", "base_rate", "roc_auc", "pr_auc", "capacity", "precision_at_capacity",
                "lift_at_capacity")  # fmt: skip


@dataclass
class ChurnTrainResult:
    model_version: str
    run_id: str
    kind: str
    holdout_cutoff: date
    train_cutoffs: list[date]
    metrics: Metrics
    baseline_recency: Metrics
    calibrated: bool
    c_index: float | None
    aliases: list[str]
    reasons: list[str] = field(default_factory=list)


@dataclass
class ChurnSplit:
    """Labeled rows split by cutoff: fit on the earlier ones, hold out the latest."""

    days: DataFrame  # the persons' active days (labels and survival targets)
    data: DataFrame
    cuts: list[date]
    last: date
    features: list[str]
    fills: dict
    train: DataFrame
    holdout: DataFrame

    @property
    def train_cuts(self) -> list[date]:
        return self.cuts[:-1]

    @property
    def holdout_cut(self) -> date:
        return self.cuts[-1]


@dataclass
class ChurnFit:
    """Every candidate's holdout metrics, the best one, the survival model."""

    results: dict[str, tuple[PipelineModel, Metrics, bool]]
    kind: str
    baseline: Metrics
    surv_model: PipelineModel | None
    c_index: float | None
    survival_check: dict | None = None
    # (score, label) holdout points of every candidate and of the recency baseline
    points: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    @property
    def model(self) -> PipelineModel:
        return self.results[self.kind][0]

    @property
    def metrics(self) -> Metrics:
        return self.results[self.kind][1]

    @property
    def calibrated(self) -> bool:
        return self.results[self.kind][2]


def train_churn(lake: Lake, settings: Settings) -> ChurnTrainResult:
    """Split by cutoff -> fit every candidate and the survival model -> MLflow run ->
    registry (challenger; champion only through the gate)."""
    import mlflow

    cfg = settings.churn
    with cache_scope(settings) as caches:
        split = churn_split(lake, settings, caches)
        tracking.configure(settings.mlflow, settings.mlflow.churn_experiment)
        t0 = time.monotonic()
        with mlflow.start_run(
            run_name=tracking.unique_run_name(f"churn-{split.holdout_cut}")
        ) as run:
            fit = fit_churn(split, settings)
            _log_churn_run(fit, split, lake, settings)
            version, aliases, reasons = _register_churn(fit, split, settings)
    m = fit.metrics
    log.info(
        "churn: %s v%s (%s) PR AUC %.3f vs base rate %.3f and recency-only %.3f; aliases %s in %.1fs",
        cfg.model_name, version, fit.kind, m.pr_auc, m.base_rate, fit.baseline.pr_auc,
        aliases or "none", time.monotonic() - t0,
    )  # fmt: skip
    return ChurnTrainResult(
        version, run.info.run_id, fit.kind, split.holdout_cut, split.train_cuts, m,
        fit.baseline, fit.calibrated, fit.c_index, aliases, reasons,
    )  # fmt: skip


def churn_split(lake: Lake, settings: Settings, caches: Caches) -> ChurnSplit:
    """Labeled rows (cached) split into the training cutoffs and the latest (holdout)."""
    cfg = settings.churn
    # Labels and survival targets both come from the active days: one scan of silver.
    days = caches.keep(active_days(lake.read(EVENTS)))
    data, cuts, last = training_set(lake, settings, days)
    data, _ = cached_for_training(data, settings.spark.ml_single_partition_max_rows)
    caches.track(data)
    features = feature_list(lake, settings)
    train = data.filter(F.col("as_of_date").isin(cuts[:-1]))
    holdout = data.filter(F.col("as_of_date") == F.lit(cuts[-1]))
    split = ChurnSplit(days, data, cuts, last, features, catalog_fills(lake), train, holdout)
    n_train, n_hold = train.count(), holdout.count()
    log.info(
        "churn: %d training rows over cutoffs %s..%s, holdout %d rows at %s (H=%dd), %d features",
        n_train, split.train_cuts[0], split.train_cuts[-1], n_hold, split.holdout_cut,
        cfg.horizon_days, len(features),
    )  # fmt: skip
    if n_train == 0 or n_hold == 0:
        raise LakeError("churn: no eligible persons in the training or holdout cutoffs")
    return split


def fit_churn(split: ChurnSplit, settings: Settings) -> ChurnFit:
    """Fit every classifier kind (calibrated on the latest training cutoff when there are
    several) and the survival model side by side; keep the best holdout PR AUC."""
    cfg = settings.churn
    train_cuts = split.train_cuts
    fit_cuts = train_cuts[:-1] if len(train_cuts) > 1 and cfg.calibrate else train_cuts
    fit_rows = split.train.filter(F.col("as_of_date").isin(fit_cuts))
    cal_rows = split.train.filter(F.col("as_of_date") == F.lit(train_cuts[-1]))
    kinds = list(cfg.models or KINDS)

    points: dict[str, list[tuple[float, float]]] = {}

    def candidate(kind: str) -> tuple[PipelineModel, Metrics, bool]:
        model = fit_classifier(fit_rows, kind, split.features, split.fills, cfg)
        model, calibrated = _maybe_calibrate(model, cal_rows, cfg, fit_cuts != train_cuts)
        scored = probability(model, split.holdout).select(PROB, LABEL).cache()
        points[kind] = curve_points(scored)
        metrics = evaluate(scored, cfg)
        scored.unpersist()
        return model, metrics, calibrated

    def survival() -> tuple[PipelineModel | None, float | None, dict | None]:
        if not cfg.survival:
            return None, None, None
        return _survival(
            split.days, split.data, split.cuts, split.last, split.features, split.fills, settings
        )

    fitted = run_concurrently(
        [*[partial(candidate, k) for k in kinds], survival], settings.spark.ml_parallelism
    )
    results = dict(zip(kinds, fitted[:-1], strict=True))
    surv_model, c_index, check = fitted[-1]
    kind = max(results, key=lambda k: results[k][1].pr_auc)
    recency = split.holdout.withColumn(PROB, F.col("recency_days_event").cast("double"))
    points[BASELINE] = curve_points(recency)
    return ChurnFit(results, kind, evaluate(recency, cfg), surv_model, c_index, check, points)


def _log_churn_run(fit: ChurnFit, split: ChurnSplit, lake: Lake, settings: Settings):
    """Params, the metrics each score defines, datasets, curves of every candidate."""
    import mlflow

    cfg = settings.churn
    for kind, (_, m, calibrated) in fit.results.items():
        log.info(
            "churn: %s holdout ROC AUC %.3f, PR AUC %.3f (base rate %.3f), Brier %.4f%s",
            kind, m.roc_auc, m.pr_auc, m.base_rate, m.brier,
            " (calibrated)" if calibrated else "",
        )  # fmt: skip
        mlflow.log_metrics(m.as_dict(f"{kind}_"))
    mlflow.log_params(
        {
            "model_kind": fit.kind,
            "horizon_days": cfg.horizon_days,
            "lookback_days": cfg.lookback_days,
            "train_cutoffs": ",".join(str(c) for c in split.train_cuts),
            "holdout_cutoff": str(split.holdout_cut),
            "class_weight": cfg.class_weight,
            "capacity": fit.metrics.capacity,
            "features": len(split.features),
            "calibrated": fit.calibrated,
            "last_event_date": str(split.last),
            "survival_window_days": cfg.survival_window_days,
        }
    )
    mlflow.log_metrics(fit.metrics.as_dict())
    # the recency baseline ranks persons; it is not a probability: no Brier, no log loss
    base = fit.baseline.as_dict()
    mlflow.log_metrics({f"baseline_recency_{k}": base[k] for k in RANK_METRICS})
    if fit.c_index is not None:
        mlflow.log_metric("c_index", fit.c_index)
    check = fit.survival_check
    if check and check["predicted"] is not None and check["observed"] is not None:
        mlflow.log_metrics(
            {
                "survival_check_days": check["days"],
                "survival_predicted": check["predicted"],
                "survival_observed_km": check["observed"],
                "survival_abs_error": abs(check["predicted"] - check["observed"]),
                "survival_weibull_shape": check["shape"],
            }
        )
    snapshots = {"cutoffs": ",".join(str(c) for c in split.train_cuts)}
    tracking.log_table_inputs(
        lake,
        [
            (USER_FEATURES, "training", snapshots),
            (USER_FEATURES, "holdout", {"cutoffs": str(split.holdout_cut)}),
            (EVENTS, "labels", {"last_event_date": str(split.last)}),
        ],
    )
    log_churn_artifacts(fit, split, settings)


def _register_churn(
    fit: ChurnFit, split: ChurnSplit, settings: Settings
) -> tuple[str, list[str], list[str]]:
    """Log the model (and the survival model), apply the gate, tag the version."""
    import mlflow

    cfg = settings.churn
    example = split.holdout.select(*split.features)
    version = tracking.log_spark_model(fit.model, cfg.model_name, example, "prediction")
    if fit.surv_model is not None:
        import mlflow.spark

        mlflow.spark.log_model(
            fit.surv_model,
            artifact_path="survival_model",
            pip_requirements=tracking.PIP_REQUIREMENTS,
        )
    aliases, reasons = promote(settings, version.version, split.holdout, fit.metrics, fit.baseline)
    client = mlflow.MlflowClient()
    tags = {
        "holdout_cutoff": str(split.holdout_cut),
        "kind": fit.kind,
        "survival": str(fit.surv_model is not None).lower(),
    }
    for key, value in tags.items():
        client.set_model_version_tag(cfg.model_name, version.version, key, value)
    mlflow.set_tag("aliases", ",".join(aliases) or "none")
    m = fit.metrics
    tracking.describe_model(
        cfg.model_name,
        version.version,
        model_card(cfg, fit, split),
        f"{fit.kind} trained on cutoffs {split.train_cuts[0]}..{split.train_cuts[-1]}, holdout "
        f"{split.holdout_cut}: PR AUC {m.pr_auc:.3f} (base rate {m.base_rate:.3f}, recency "
        f"baseline {fit.baseline.pr_auc:.3f}), lift {m.lift_at_capacity:.2f} in the top "
        f"{m.capacity}. Gate: {'; '.join(reasons) if reasons else 'passed'}.",
    )
    return str(version.version), aliases, reasons


def _maybe_calibrate(
    model: PipelineModel, cal: DataFrame, cfg, separate: bool
) -> tuple[PipelineModel, bool]:
    """Calibration (Platt or isotonic) fitted on half of the calibration slice, kept only
    if it lowers the Brier score on the other half; then refitted on the whole slice."""
    if not (cfg.calibrate and separate):
        return model, False
    scored = raw_probability(model.transform(cal)).cache()
    half = F.abs(F.hash("person_id")) % 2
    a, b = scored.filter(half == 0), scored.filter(half == 1)
    if a.limit(1).count() == 0 or b.limit(1).count() == 0:
        scored.unpersist()
        return model, False
    method = cfg.calibration_method
    cal_b = fit_calibrator(a, method).transform(b)
    before = b.agg(F.avg((F.col("p_raw") - F.col(LABEL)) ** 2)).first()[0]
    after = cal_b.agg(F.avg((calibrated_column(cal_b) - F.col(LABEL)) ** 2)).first()[0]
    log.info("churn: %s calibration Brier %.4f -> %.4f on the check half", method, before, after)
    if after is None or before is None or after >= before:
        scored.unpersist()
        return model, False
    full = fit_calibrator(scored, method)
    scored.unpersist()
    return PipelineModel(stages=[*model.stages, *full.stages]), True


def _survival(days, data, cuts, last, features, fills, settings):
    cfg = settings.churn
    targets = survival_targets(days, cuts, last, cfg)
    rows = data.drop(LABEL).join(targets, ["person_id", "as_of_date"])
    train, n_train = cached_for_training(
        rows.filter(F.col("as_of_date") < F.lit(cuts[-1])),
        settings.spark.ml_single_partition_max_rows,
    )
    hold = rows.filter(F.col("as_of_date") == F.lit(cuts[-1]))
    if n_train == 0 or hold.limit(1).count() == 0:
        train.unpersist()
        return None, None, None
    model = fit_survival(train, features, fills)
    train.unpersist()
    col, shape = survival_shape(model)
    # one scoring of the holdout for the Kaplan-Meier check and the concordance sample
    pred = model.transform(hold).select("duration_days", "observed", F.col(col).alias("scale"))
    pred = pred.cache()
    # the longest time the holdout's outcomes are observed for (censoring at the data's end)
    check_days = min(cfg.survival_window_days, (last - cuts[-1]).days + 1)
    check = survival_check(pred, shape, check_days)
    n = pred.count()
    sample = pred.sample(False, C_INDEX_SAMPLE / n, cfg.seed) if n > C_INDEX_SAMPLE else pred
    pts = [(r[0], r[1], r[2]) for r in sample.collect()]
    pred.unpersist()
    c = concordance_index(pts)
    log.info(
        "churn: survival (AFT, Weibull shape %.2f) concordance %.3f on %d holdout rows; "
        "still active after %d days: predicted %.3f, observed (Kaplan-Meier) %.3f",
        shape, c, len(pts), check_days, check["predicted"], check["observed"],
    )  # fmt: skip
    return model, c, check


def survival_check(pred: DataFrame, shape: float, days: int, bins: int = 4) -> dict:
    """Predicted vs observed survival at `days` on the holdout, overall and by quartile
    of predicted survival (the observed side is Kaplan-Meier, so censored persons
    count as at risk until they leave the data)."""
    p = survival_at(F.col("scale"), shape, days)
    binned = pred.select(
        "duration_days",
        "observed",
        p.alias("p"),
        F.ntile(bins).over(Window.partitionBy(F.lit(1)).orderBy(p)).alias("bin"),
    )
    agg = (
        binned.groupBy("bin", "duration_days")
        .agg(
            F.sum("observed").cast("long").alias("events"),
            F.sum(1 - F.col("observed")).cast("long").alias("censored"),
            F.sum("p").alias("p_sum"),
            F.count(F.lit(1)).alias("n"),
        )
        .collect()
    )
    by_bin: dict[int, list] = {}
    for r in agg:
        by_bin.setdefault(int(r["bin"]), []).append(r)

    def summary(rows) -> dict:
        n = sum(r["n"] for r in rows)
        return {
            "persons": n,
            "predicted": sum(r["p_sum"] for r in rows) / n if n else None,
            "observed": kaplan_meier(
                [(r["duration_days"], r["events"], r["censored"]) for r in rows], days
            ),
        }

    out = {"days": days, "shape": shape, **summary(agg)}
    out["bins"] = [{"bin": b, **summary(rows)} for b, rows in sorted(by_bin.items())]
    return out
