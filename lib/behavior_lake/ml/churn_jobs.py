"""Train (time-aware, gated champion/challenger) and score churn models."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import date
from functools import partial
from pathlib import Path

from pyspark import StorageLevel
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from behavior_lake.config import Settings
from behavior_lake.contracts.ml import (
    CHURN_SCORES,
    CHURN_SCORES_SHADOW,
    MODEL_MONITORING,
    SCORING_REJECTS,
    SHADOW_COMPARISON,
)
from behavior_lake.lake import Lake, LakeError
from behavior_lake.lake.base import spec_rows
from behavior_lake.ml import cached_for_training, plots, run_concurrently, tracking
from behavior_lake.ml.churn import (
    LABEL,
    PROB,
    Metrics,
    active_days,
    calibrated_column,
    calibration_table,
    capacity_for,
    complete_cutoffs,
    concordance_index,
    curve_points,
    default_features,
    evaluate,
    fit_calibrator,
    fit_classifier,
    fit_survival,
    labels,
    probability,
    raw_probability,
    roc_pr_lift,
    spearman,
    survival_targets,
)
from behavior_lake.ml.gate import beats_champion, first_champion_shortfalls, pr_auc_skill
from behavior_lake.ml.segment_jobs import FEATURES, catalog_fills, snapshot_dates

log = logging.getLogger(__name__)


class NoChampionError(LakeError):
    """Scoring asked for, but no model version has passed the gate."""


CHAMPION, CHALLENGER = "champion", "challenger"
KINDS = ("logistic_regression", "gbt")
NUMERIC = (T.IntegerType, T.LongType, T.DoubleType, T.FloatType, T.DecimalType)
C_INDEX_SAMPLE = 3000


def _last_event(lake: Lake) -> date:
    d = lake.read("silver.events").agg(F.max("event_date")).first()[0]
    if d is None:
        raise LakeError("silver.events is empty: nothing to label")
    return d


def _feature_list(lake: Lake, settings: Settings) -> list[str]:
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


def training_set(
    lake: Lake, settings: Settings, days: DataFrame | None = None
) -> tuple[DataFrame, list[date], date]:
    """Labeled rows (features as of each complete cutoff + churned). `days`: the
    persons' active days (`active_days` of silver.events) when the caller has them."""
    cfg = settings.churn
    last = _last_event(lake)
    cuts = complete_cutoffs(snapshot_dates(lake), last, cfg)
    if len(cuts) < 2:
        raise LakeError(
            f"churn needs at least 2 gold.user_features snapshots whose horizon "
            f"(churn.horizon_days={cfg.horizon_days}) is complete before the last event "
            f"({last}); have {len(cuts)}. Build earlier snapshots (gold_features "
            "--from-date) or lower churn.horizon_days"
        )
    if days is None:
        days = active_days(lake.read("silver.events"))
    lab = labels(days, cuts, cfg)
    feats = lake.read(FEATURES).filter(F.col("as_of_date").isin(cuts))
    return feats.join(lab, ["person_id", "as_of_date"]), cuts, last


def train_churn(lake: Lake, settings: Settings) -> ChurnTrainResult:
    import mlflow

    cfg = settings.churn
    # Labels and survival targets both come from the active days: one scan of silver.
    days = active_days(lake.read("silver.events")).persist(StorageLevel.MEMORY_AND_DISK)
    data, cuts, last = training_set(lake, settings, days)
    data, _ = cached_for_training(data, settings.spark.ml_single_partition_max_rows)
    features = _feature_list(lake, settings)
    fills = catalog_fills(lake)
    holdout_cut = cuts[-1]
    train_cuts = cuts[:-1]
    train = data.filter(F.col("as_of_date").isin(train_cuts))
    holdout = data.filter(F.col("as_of_date") == F.lit(holdout_cut))
    n_train, n_hold = train.count(), holdout.count()
    log.info(
        "churn: %d training rows over cutoffs %s..%s, holdout %d rows at %s (H=%dd), %d features",
        n_train,
        train_cuts[0],
        train_cuts[-1],
        n_hold,
        holdout_cut,
        cfg.horizon_days,
        len(features),
    )
    if n_train == 0 or n_hold == 0:
        raise LakeError("churn: no eligible persons in the training or holdout cutoffs")
    tracking.configure(settings.mlflow, settings.mlflow.churn_experiment)
    t0 = time.monotonic()
    with mlflow.start_run(run_name=f"churn-{holdout_cut}") as run:
        # calibration slice: the latest training cutoff (when there are several)
        fit_cuts = train_cuts[:-1] if len(train_cuts) > 1 and cfg.calibrate else train_cuts
        fit_rows = train.filter(F.col("as_of_date").isin(fit_cuts))
        cal_rows = train.filter(F.col("as_of_date") == F.lit(train_cuts[-1]))
        kinds = list(cfg.models or KINDS)

        def candidate(kind: str) -> tuple[PipelineModel, Metrics, bool]:
            model = fit_classifier(fit_rows, kind, features, fills, cfg)
            model, calibrated = _maybe_calibrate(model, cal_rows, cfg, fit_cuts != train_cuts)
            return model, evaluate(probability(model, holdout), cfg), calibrated

        def survival() -> tuple[PipelineModel | None, float | None]:
            if not cfg.survival:
                return None, None
            return _survival(days, data, cuts, last, features, fills, settings)

        # every candidate and the survival model are independent fits: run side by side
        fitted = run_concurrently(
            [*[partial(candidate, k) for k in kinds], survival], settings.spark.ml_parallelism
        )
        results: dict[str, tuple[PipelineModel, Metrics, bool]] = dict(
            zip(kinds, fitted[:-1], strict=True)
        )
        surv_model, c_index = fitted[-1]
        for kind in kinds:
            _, m, calibrated = results[kind]
            log.info(
                "churn: %s holdout ROC AUC %.3f, PR AUC %.3f (base rate %.3f), Brier %.4f%s",
                kind,
                m.roc_auc,
                m.pr_auc,
                m.base_rate,
                m.brier,
                " (calibrated)" if calibrated else "",
            )
            mlflow.log_metrics(m.as_dict(f"{kind}_"))
        kind = max(results, key=lambda k: results[k][1].pr_auc)
        model, metrics, calibrated = results[kind]
        baseline = evaluate(holdout.withColumn(PROB, F.col("recency_days_event")), cfg)
        scored = probability(model, holdout).cache()
        mlflow.log_params(
            {
                "model_kind": kind,
                "horizon_days": cfg.horizon_days,
                "lookback_days": cfg.lookback_days,
                "train_cutoffs": ",".join(str(c) for c in train_cuts),
                "holdout_cutoff": str(holdout_cut),
                "class_weight": cfg.class_weight,
                "capacity": metrics.capacity,
                "features": len(features),
                "calibrated": calibrated,
                "last_event_date": str(last),
            }
        )
        mlflow.log_metrics(metrics.as_dict())
        mlflow.log_metrics(baseline.as_dict("baseline_recency_"))
        if c_index is not None:
            mlflow.log_metric("c_index", c_index)
        _log_churn_artifacts(
            scored,
            model,
            kind,
            features,
            metrics,
            baseline,
            calibrated,
            c_index,
            settings,
            holdout_cut,
        )
        version = tracking.log_spark_model(model, cfg.model_name)
        if surv_model is not None:
            import mlflow.spark

            mlflow.spark.log_model(
                surv_model,
                artifact_path="survival_model",
                pip_requirements=tracking.PIP_REQUIREMENTS,
            )
        aliases, reasons = _promote(settings, version.version, holdout, metrics, baseline)
        client = mlflow.MlflowClient()
        client.set_model_version_tag(
            cfg.model_name, version.version, "holdout_cutoff", str(holdout_cut)
        )
        client.set_model_version_tag(cfg.model_name, version.version, "kind", kind)
        client.set_model_version_tag(
            cfg.model_name, version.version, "survival", str(surv_model is not None).lower()
        )
        mlflow.set_tag("aliases", ",".join(aliases) or "none")
        scored.unpersist()
    data.unpersist()
    days.unpersist()
    log.info(
        "churn: %s v%s (%s) PR AUC %.3f vs base rate %.3f and recency-only %.3f; aliases %s in %.1fs",
        cfg.model_name,
        version.version,
        kind,
        metrics.pr_auc,
        metrics.base_rate,
        baseline.pr_auc,
        aliases or "none",
        time.monotonic() - t0,
    )
    return ChurnTrainResult(
        str(version.version), run.info.run_id, kind, holdout_cut, train_cuts, metrics,
        baseline, calibrated, c_index, aliases, reasons,
    )  # fmt: skip


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
        return None, None
    model = fit_survival(train, features, fills)
    train.unpersist()
    pred = model.transform(hold).select("duration_days", "observed", "expected_active_days")
    n = pred.count()
    if n > C_INDEX_SAMPLE:
        pred = pred.sample(False, C_INDEX_SAMPLE / n, cfg.seed)
    pts = [(r[0], r[1], r[2]) for r in pred.collect()]
    c = concordance_index(pts)
    log.info("churn: survival (AFT) concordance index %.3f on %d holdout rows", c, len(pts))
    return model, c


def _promote(settings: Settings, version: str, holdout: DataFrame, new: Metrics, recency: Metrics):
    """New version -> challenger; champion if it beats the champion on the same holdout
    (PR AUC + margin, Brier not worse), or if there is no champion and it beats the naive
    baselines (ml.gate)."""
    cfg = settings.churn
    g = cfg.gate
    name = cfg.model_name
    tracking.set_alias(name, CHALLENGER, version)
    reasons = first_champion_shortfalls(new, recency, g)
    try:
        champ = tracking.version_by_alias(name, CHAMPION)
    except tracking.ModelNotFoundError:
        champ = None
    if champ is None:
        if not reasons:
            tracking.set_alias(name, CHAMPION, version)
            _drop_alias(name, CHALLENGER)
            log.info("churn: v%s is the first champion (beats the naive baselines)", version)
            return [CHAMPION], reasons
        log.warning(
            "churn: v%s stays challenger, no champion yet; to pass: %s",
            version,
            "; ".join(reasons),
        )
        return [CHALLENGER], reasons
    old = evaluate(probability(tracking.load_spark_model(name, champ.version), holdout), cfg)
    import mlflow

    mlflow.log_metrics({"champion_pr_auc": old.pr_auc, "champion_brier": old.brier})
    reasons = reasons + beats_champion(new, old, g)
    if not reasons:
        tracking.set_alias(name, CHAMPION, version)
        _drop_alias(name, CHALLENGER)
        log.info(
            "churn: v%s replaces champion v%s (PR AUC %.3f vs %.3f, Brier %.4f vs %.4f)",
            version, champ.version, new.pr_auc, old.pr_auc, new.brier, old.brier,
        )  # fmt: skip
        return [CHAMPION], reasons
    log.warning(
        "churn: v%s stays challenger (champion v%s kept): %s",
        version,
        champ.version,
        "; ".join(reasons),
    )
    return [CHALLENGER], reasons


def _drop_alias(name: str, alias: str) -> None:
    import mlflow

    try:
        mlflow.MlflowClient().delete_registered_model_alias(name, alias)
    except Exception:  # the alias may not exist
        pass


def _log_churn_artifacts(
    scored, model, kind, features, metrics, baseline, calibrated, c_index, settings, cut
) -> None:
    import mlflow

    cfg = settings.churn
    pts = curve_points(scored)
    cur = roc_pr_lift(pts)
    table = calibration_table(scored)
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        plots.curve(
            {kind: (cur["fpr"], cur["tpr"])},
            "false positive rate",
            "true positive rate",
            "ROC (holdout)",
            d / "roc_curve.png",
            diagonal=True,
        )
        plots.curve(
            {kind: (cur["recall"], cur["precision"])},
            "recall",
            "precision",
            "Precision-recall (holdout)",
            d / "pr_curve.png",
        )
        plots.curve(
            {kind: (cur["share"], cur["lift"])},
            "share of persons contacted",
            "lift",
            "Cumulative lift (holdout)",
            d / "lift_chart.png",
        )
        plots.curve(
            {"model": ([r["mean_predicted"] for r in table], [r["observed"] for r in table])},
            "mean predicted probability",
            "observed churn rate",
            "Calibration (deciles)",
            d / "calibration.png",
            diagonal=True,
        )
        (d / "calibration_table.json").write_text(json.dumps(table, indent=2, default=float))
        imp = _importances(model, kind, features)
        top = sorted(imp.items(), key=lambda kv: -abs(kv[1]))[:25]
        plots.bars(
            [k for k, _ in top][::-1],
            [v for _, v in top][::-1],
            "Feature importance" if kind == "gbt" else "Coefficients (scaled features)",
            d / "feature_importance.png",
        )
        (d / "feature_importance.json").write_text(json.dumps(imp, indent=2))
        (d / "model_card.md").write_text(
            _card(cfg, kind, features, metrics, baseline, calibrated, c_index, cut)
        )
        mlflow.log_artifacts(str(d))  # fmt: skip


def _importances(model: PipelineModel, kind: str, features) -> dict[str, float]:
    clf = next(
        s for s in model.stages if hasattr(s, "featureImportances") or hasattr(s, "coefficients")
    )
    vals = clf.featureImportances.toArray() if kind == "gbt" else clf.coefficients.toArray()
    return {f: float(v) for f, v in zip(features, vals, strict=True)}


def _card(cfg, kind, features, m: Metrics, base: Metrics, calibrated, c_index, cut) -> str:
    return f"""# Model card: {cfg.model_name}

**Predicts** the probability that a person active in the {cfg.lookback_days} days before a
cutoff has no activity in the {cfg.horizon_days} days from the cutoff ("churn").

**Data.** gold.user_features snapshots as cutoffs (features only from events before the
cutoff; labels only from events at or after it). Holdout = the latest complete cutoff
({cut}); training = earlier cutoffs. Class imbalance: {cfg.class_weight} instance weights.

**Model.** {kind} on {len(features)} features (documented imputation, log1p, scaling);
{cfg.calibration_method} calibration {"applied (it lowered the Brier score)" if calibrated else "not applied"}.

| holdout metric | model | recency-only baseline |
|---|---|---|
| ROC AUC | {m.roc_auc:.3f} | {base.roc_auc:.3f} |
| PR AUC (base rate {m.base_rate:.3f}) | {m.pr_auc:.3f} | {base.pr_auc:.3f} |
| Brier | {m.brier:.4f} | - |
| log loss | {m.log_loss:.4f} | - |
| precision in top {m.capacity} | {m.precision_at_capacity:.3f} | {base.precision_at_capacity:.3f} |
| lift in top {m.capacity} | {m.lift_at_capacity:.2f} | {base.lift_at_capacity:.2f} |

Survival (AFT, days until churn) concordance index: {"n/a" if c_index is None else f"{c_index:.3f}"}.

**Assumptions and limits.** Churn is defined by inactivity only; persons who were not
active in the look-back window are not scored. Behaviour drifts: ops.model_monitoring
checks realized PR AUC once labels mature. Scores are correlational, **not causal**: a
high score says who is likely to leave, not why, nor whether an intervention helps
(test that with a holdout group).
"""


# ----------------------------------------------------------------------------- scoring


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
    cfg = settings.churn
    have = snapshot_dates(lake)
    if not have:
        raise LakeError(f"{FEATURES} has no snapshot yet: run gold_features first")
    day = as_of or have[-1]
    if day not in have:
        raise LakeError(f"--as-of {day}: no {FEATURES} snapshot for that date")
    tracking.configure(settings.mlflow, settings.mlflow.churn_experiment)
    try:
        champ = tracking.version_by_alias(cfg.model_name, CHAMPION)
    except tracking.ModelNotFoundError:
        raise NoChampionError(
            f"no scores: {cfg.model_name} has no '{CHAMPION}' version yet (train_churn "
            "logs what the latest challenger needs to pass churn.gate)"
        ) from None
    features = _feature_list(lake, settings)
    snap = lake.read(FEATURES).filter(F.col("as_of_date") == F.lit(day))
    window = f"active_days_{cfg.lookback_days}d"
    if window not in snap.columns:
        raise ValueError(
            f"churn.lookback_days={cfg.lookback_days}: gold.user_features has no {window} "
            "(add it to gold.features.windows_days)"
        )
    eligible = snap.filter(F.col(window) > 0)
    good, bad = _valid_rows(eligible, features)
    for spec in (
        CHURN_SCORES,
        CHURN_SCORES_SHADOW,
        SHADOW_COMPARISON,
        SCORING_REJECTS,
        MODEL_MONITORING,
    ):
        lake.ensure(spec.name)
    good = good.cache()
    n = good.count()
    rejected = _reject(lake, bad, day, cfg.model_name, str(champ.version))
    cap = capacity_for(n, cfg)
    log.info(
        "churn: scoring %d eligible persons of %s with v%s (%d set aside)",
        n,
        day,
        champ.version,
        rejected,
    )
    scores = _scores(lake, good, cfg.model_name, champ, day, cap).cache()
    res_w = lake.overwrite(
        CHURN_SCORES.name, scores.select(*CHURN_SCORES.schema.fieldNames()),
        where=f"as_of_date = DATE'{day.isoformat()}'",
    )  # fmt: skip
    out = ScoreResult(day, res_w.rows_written, rejected, str(champ.version))
    shadow = cfg.shadow if shadow is None else shadow
    if shadow:
        try:
            chal = tracking.version_by_alias(cfg.model_name, CHALLENGER)
        except tracking.ModelNotFoundError:
            chal = None
        if chal is not None and chal.version != champ.version:
            sh = _scores(lake, good, cfg.model_name, chal, day, cap).cache()
            lake.overwrite(
                CHURN_SCORES_SHADOW.name, sh.select(*CHURN_SCORES_SHADOW.schema.fieldNames()),
                where=f"as_of_date = DATE'{day.isoformat()}'",
            )  # fmt: skip
            rho = spearman(scores, sh)
            both = (
                scores.filter("in_capacity")
                .select("person_id")
                .join(sh.filter("in_capacity").select("person_id"), "person_id")
                .count()
            )
            overlap = both / cap if cap else float("nan")
            row = [
                (
                    day,
                    cfg.model_name,
                    str(champ.version),
                    str(chal.version),
                    n,
                    float(rho),
                    cap,
                    float(overlap),
                )
            ]
            lake.overwrite(
                SHADOW_COMPARISON.name,
                spec_rows(lake.spark, SHADOW_COMPARISON, row, "compared_at"),
                where=f"as_of_date = DATE'{day.isoformat()}'",
            )  # fmt: skip
            out.shadow_version, out.rank_correlation, out.top_overlap = (
                str(chal.version),
                rho,
                overlap,
            )
            log.info(
                "churn: shadow v%s vs champion v%s: rank correlation %.3f, top-%d overlap %.1f%%",
                chal.version,
                champ.version,
                rho,
                cap,
                100 * overlap,
            )
            sh.unpersist()
        else:
            log.info("churn: shadow mode: no challenger different from the champion")
    scores.unpersist()
    good.unpersist()
    out.monitored = monitor(lake, settings)
    return out


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
        where=f"as_of_date = DATE'{day.isoformat()}' AND model_name = '{name}'",
    )
    if res.rows_written:
        log.warning(
            "churn: %d malformed feature rows set aside in %s",
            res.rows_written,
            SCORING_REJECTS.name,
        )
    return res.rows_written


def _scores(lake: Lake, good: DataFrame, name: str, mv, day: date, cap: int) -> DataFrame:
    model = tracking.load_spark_model(name, mv.version)
    scored = probability(model, good).select("person_id", "as_of_date", PROB, "recency_days_event")
    expected = F.lit(None).cast("double")
    if (mv.tags or {}).get("survival") == "true":  # set by train_churn
        import mlflow.spark

        surv = mlflow.spark.load_model(f"runs:/{mv.run_id}/survival_model")
        scored = surv.transform(
            scored.join(good, ["person_id", "as_of_date", "recency_days_event"])
        )
        expected = F.col("expected_active_days")
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
    )  # fmt: skip


def monitor(lake: Lake, settings: Settings) -> list[date]:
    """Realized PR AUC and calibration for past scoring dates whose labels matured."""
    cfg = settings.churn
    if not lake.exists(CHURN_SCORES.name):
        return []
    last = _last_event(lake)
    scored_days = sorted(
        r[0] for r in lake.read(CHURN_SCORES.name).select("as_of_date").distinct().collect()
    )
    done: set[tuple] = set()
    if lake.exists(MODEL_MONITORING.name):
        done = {
            (r[0], r[1])
            for r in lake.read(MODEL_MONITORING.name)
            .select("as_of_date", "model_version")
            .collect()
        }
    days = active_days(lake.read("silver.events"))
    out = []
    for d in complete_cutoffs(scored_days, last, replace_max(cfg)):
        scores = lake.read(CHURN_SCORES.name).filter(F.col("as_of_date") == F.lit(d))
        for (version,) in scores.select("model_version").distinct().collect():
            if (d, version) in done:
                continue
            lab = labels(days, [d], cfg)
            joined = scores.filter(F.col("model_version") == version).join(
                lab, ["person_id", "as_of_date"]
            )
            if joined.limit(1).count() == 0:
                continue
            m = evaluate(joined, cfg)
            table = calibration_table(joined)
            ece = sum(abs(r["mean_predicted"] - r["observed"]) * r["n"] for r in table) / max(
                1, m.rows
            )
            retrain = not pr_auc_skill(m) >= cfg.monitoring_min_pr_auc_skill
            row = [
                (
                    d,
                    cfg.model_name,
                    version,
                    m.rows,
                    m.base_rate,
                    m.roc_auc,
                    m.pr_auc,
                    m.brier,
                    ece,
                    json.dumps(table, default=float),
                    retrain,
                )
            ]
            df = spec_rows(lake.spark, MODEL_MONITORING, row, "computed_at")
            lake.overwrite(
                MODEL_MONITORING.name, df,
                where=f"as_of_date = DATE'{d.isoformat()}' AND model_version = '{version}'",
            )  # fmt: skip
            log.info(
                "churn monitoring %s v%s: realized PR AUC %.3f (base %.3f), ECE %.3f%s",
                d,
                version,
                m.pr_auc,
                m.base_rate,
                ece,
                " -> RETRAIN" if retrain else "",
            )
            out.append(d)
    return out


def replace_max(cfg):
    """Monitoring looks at every scored date, not only the newest max_cutoffs."""
    return replace(cfg, max_cutoffs=10_000)
