"""Churn: time-aware labels, Spark ML models, metrics, calibration, survival.

Labels (per cutoff c = a weekly gold.user_features as_of_date, horizon H):
  eligible  the person has an event in [c - lookback, c)
  churned   eligible and no event in [c, c + H)
  A cutoff is labeled only when its horizon is complete: c + H <= last event date + 1.
Features come from the snapshot as_of c (events before c only); labels only from events
at or after c. So no feature sees the future and no label sees the past (tested).

Time to event (survival): from the cutoff, the person's "churn moment" is the last active
day before the first gap of at least H days; duration = days from c to the day after it
(at least 0.5). When no such gap is observed before the data ends, the person is right-
censored at the end of the data.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import reduce

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import GBTClassifier, LogisticRegression
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.feature import Imputer, SQLTransformer, StandardScaler, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.ml.regression import AFTSurvivalRegression, IsotonicRegression
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from behavior_lake.config import ChurnSettings

log = logging.getLogger(__name__)
LABEL = "churned"
WEIGHT = "weight"
VECTOR = "features_scaled"
PROB = "churn_probability"
PLATT_PROB = "_platt_probability"
KEYS = ("person_id", "as_of_date")


# ----------------------------------------------------------------------------- labels


def complete_cutoffs(snapshots: Sequence[date], last_event: date, cfg: ChurnSettings) -> list[date]:
    """Snapshots whose horizon is fully observed, newest `max_cutoffs`."""
    ok = [
        c
        for c in sorted(snapshots)
        if c + timedelta(days=cfg.horizon_days) <= last_event + timedelta(days=1)
    ]
    return ok[-cfg.max_cutoffs :]


def active_days(events: DataFrame) -> DataFrame:
    return events.select("person_id", F.col("event_date").alias("day")).distinct()


def labels(days: DataFrame, cutoffs: Sequence[date], cfg: ChurnSettings) -> DataFrame:
    """(person_id, as_of_date, churned) for eligible persons at each cutoff."""
    spark = days.sparkSession
    cuts = spark.createDataFrame([(c,) for c in cutoffs], "as_of_date date")
    joined = days.join(F.broadcast(cuts), F.lit(True))
    rel = F.datediff("day", "as_of_date")
    return (
        joined.filter((rel >= -cfg.lookback_days) & (rel < cfg.horizon_days))
        .groupBy(*KEYS)
        .agg(
            F.max((rel < 0).cast("int")).alias("eligible"),
            F.max((rel >= 0).cast("int")).alias("active_after"),
        )
        .filter("eligible = 1")
        .select(*KEYS, (F.col("active_after") == 0).cast("double").alias(LABEL))
    )


def survival_targets(
    days: DataFrame, cutoffs: Sequence[date], last_event: date, cfg: ChurnSettings
) -> DataFrame:
    """(person_id, as_of_date, duration_days, observed) for eligible persons.

    observed = 1 when the churn moment is seen (a gap >= H after an active day, inside
    the data), 0 when censored at the end of the data.
    """
    spark = days.sparkSession
    h = cfg.horizon_days
    cuts = spark.createDataFrame([(c,) for c in cutoffs], "as_of_date date")
    rel = F.datediff("day", "as_of_date")
    joined = days.join(F.broadcast(cuts), F.lit(True)).filter(rel >= -cfg.lookback_days)
    # keep the last active day before the cutoff and every day from the cutoff on
    w_last = Window.partitionBy(*KEYS).orderBy(F.desc("day"))
    before = (
        joined.filter(rel < 0)
        .withColumn("r", F.row_number().over(w_last))
        .filter("r = 1")
        .drop("r")
    )
    after = joined.filter(rel >= 0)
    seq = before.unionByName(after)
    w = Window.partitionBy(*KEYS).orderBy("day")
    end = F.lit(last_event)
    seq = seq.withColumn("next_day", F.lead("day").over(w))
    gap_seen = F.coalesce(F.datediff("next_day", "day") > h, F.datediff(end, F.col("day")) >= h)
    churn_day = seq.filter(gap_seen).groupBy(*KEYS).agg(F.min("day").alias("churn_day"))
    eligible = before.select(*KEYS)
    out = eligible.join(churn_day, list(KEYS), "left")
    duration = F.when(
        F.col("churn_day").isNotNull(), F.datediff("churn_day", "as_of_date") + 1
    ).otherwise(F.datediff(end, F.col("as_of_date")) + 1)
    return out.select(
        *KEYS,
        F.greatest(duration.cast("double"), F.lit(0.5)).alias("duration_days"),
        F.col("churn_day").isNotNull().cast("double").alias("observed"),
    )


# ----------------------------------------------------------------------------- models


def default_features(columns: Sequence[str], numeric: set[str], cfg: ChurnSettings) -> list[str]:
    if cfg.features:
        return list(cfg.features)
    skip = set(cfg.exclude_features) | set(KEYS) | {"computed_at"}
    return [c for c in columns if c in numeric and c not in skip]


def prep_stages(features: Sequence[str], fills: dict[str, float]) -> list:
    """Documented imputation, median for the rest, log1p on counts, scaling."""

    def prep(c: str) -> str:
        fill = fills.get(c)
        inner = f"coalesce(`{c}`, {float(fill)!r})" if fill is not None else f"`{c}`"
        return f"CAST({inner} AS DOUBLE) AS `{c}__f`"

    sel = ", ".join(prep(c) for c in features)
    logs = ", ".join(f"sign(`{c}__f`) * log1p(abs(`{c}__f`)) AS `{c}__t`" for c in features)
    return [
        SQLTransformer(statement=f"SELECT *, {sel} FROM __THIS__"),
        Imputer(inputCols=[f"{c}__f" for c in features], outputCols=[f"{c}__f" for c in features]),
        SQLTransformer(statement=f"SELECT *, {logs} FROM __THIS__"),
        VectorAssembler(inputCols=[f"{c}__t" for c in features], outputCol="features_raw"),
        StandardScaler(inputCol="features_raw", outputCol=VECTOR, withMean=True, withStd=True),
    ]


def with_weights(df: DataFrame, cfg: ChurnSettings) -> DataFrame:
    if cfg.class_weight == "none":
        return df.withColumn(WEIGHT, F.lit(1.0))
    if cfg.class_weight == "explicit":
        w = float(cfg.positive_weight)
    else:
        rate = df.agg(F.avg(LABEL)).first()[0] or 0.5
        rate = min(max(rate, 1e-6), 1 - 1e-6)
        w = (1 - rate) / rate  # positives weigh as much as negatives in total
    return df.withColumn(WEIGHT, F.when(F.col(LABEL) == 1, F.lit(w)).otherwise(F.lit(1.0)))


def classifier(kind: str, cfg: ChurnSettings):
    common = dict(featuresCol=VECTOR, labelCol=LABEL, weightCol=WEIGHT)
    if kind == "logistic_regression":
        return LogisticRegression(regParam=cfg.lr_reg_param, maxIter=100, **common)
    return GBTClassifier(
        maxIter=cfg.gbt_max_iter, maxDepth=cfg.gbt_max_depth, seed=cfg.seed, **common
    )


def fit_classifier(
    train: DataFrame,
    kind: str,
    features: Sequence[str],
    fills: dict[str, float],
    cfg: ChurnSettings,
) -> PipelineModel:
    pipe = Pipeline(stages=[*prep_stages(features, fills), classifier(kind, cfg)])
    return pipe.fit(with_weights(train, cfg))


def raw_probability(df: DataFrame) -> DataFrame:
    return df.withColumn("p_raw", vector_to_array(F.col("probability"))[1])


def fit_isotonic(scored: DataFrame) -> PipelineModel:
    iso = IsotonicRegression(
        featuresCol="probability", featureIndex=1, labelCol=LABEL, predictionCol="p_calibrated"
    )
    return PipelineModel(stages=[iso.fit(scored)])


def fit_platt(scored: DataFrame) -> PipelineModel:
    """Platt scaling: a logistic regression on the classifier's margin (rawPrediction is
    [-m, m] for both LR and GBT). Monotone in the margin, so the ranking is unchanged."""
    platt = LogisticRegression(
        featuresCol="rawPrediction",
        labelCol=LABEL,
        rawPredictionCol="_platt_raw",
        probabilityCol=PLATT_PROB,
        predictionCol="_platt_prediction",
        regParam=1e-6,
        maxIter=100,
    )
    return PipelineModel(stages=[platt.fit(scored)])


def fit_calibrator(scored: DataFrame, method: str) -> PipelineModel:
    return fit_platt(scored) if method == "platt" else fit_isotonic(scored)


def calibrated_column(df: DataFrame) -> Column | None:
    """The calibrated probability of a scored frame, when its model has a calibrator."""
    if PLATT_PROB in df.columns:
        return vector_to_array(F.col(PLATT_PROB))[1]
    if "p_calibrated" in df.columns:
        return F.col("p_calibrated")
    return None


def probability(model: PipelineModel, df: DataFrame) -> DataFrame:
    """Score with a churn PipelineModel: churn_probability (calibrated when it has a
    Platt or isotonic stage, else the classifier's probability of class 1)."""
    out = raw_probability(model.transform(df))
    cal = calibrated_column(out)
    return out.withColumn(PROB, cal if cal is not None else F.col("p_raw"))


AFT_SCALE = "aft_scale_days"  # the AFT model's prediction: the Weibull scale, in days
SIMPSON_STEPS = 64


def fit_survival(
    train: DataFrame, features: Sequence[str], fills: dict[str, float]
) -> PipelineModel:
    aft = AFTSurvivalRegression(
        featuresCol=VECTOR,
        labelCol="duration_days",
        censorCol="observed",
        predictionCol=AFT_SCALE,
        maxIter=100,
    )
    return Pipeline(stages=[*prep_stages(features, fills), aft]).fit(train)


def survival_shape(model: PipelineModel) -> tuple[str, float]:
    """(prediction column, Weibull shape k) of a fitted AFT pipeline. Spark's AFT is
    log T = x'b + s*e with e extreme-value: T is Weibull with scale exp(x'b) (the
    prediction) and shape 1/s."""
    aft = model.stages[-1]
    return aft.getPredictionCol(), 1.0 / float(aft.scale)


def survival_at(scale: Column, shape: float, days: float) -> Column:
    """P(T > days) = exp(-(days / scale)^k): the probability the churn moment has not
    come within `days` days of the cutoff."""
    safe = F.greatest(scale.cast("double"), F.lit(1e-9))
    return F.exp(-F.pow(F.lit(float(days)) / safe, F.lit(shape)))


def restricted_mean_days(scale: Column, shape: float, window: int) -> Column:
    """Expected active days within the window, E[min(T, window)] = the integral of S(t)
    from 0 to the window: bounded by [0, window] whatever the model extrapolates
    (an unrestricted Weibull mean runs to millions of days for flat hazards).

    Simpson's rule after substituting t = window * u^m (m = ceil(2/k), so the integrand
    is smooth at 0 for any shape); accurate to a fraction of a percent of the window,
    clamped into [0, window] against rounding."""
    m = max(1, math.ceil(2.0 / shape))
    h = 1.0 / SIMPSON_STEPS
    terms = []
    for i in range(SIMPSON_STEPS + 1):
        u = i * h
        weight = 1 if i in (0, SIMPSON_STEPS) else (4 if i % 2 else 2)
        jac = window * m * u ** (m - 1)  # dt/du
        if jac == 0.0:
            continue
        terms.append(F.lit(weight * jac) * survival_at(scale, shape, window * u**m))
    integral = reduce(lambda a, b: a + b, terms) * F.lit(h / 3.0)
    return F.least(F.greatest(integral, F.lit(0.0)), F.lit(float(window)))


def kaplan_meier(counts: Sequence[tuple[float, int, int]], at: float) -> float | None:
    """Kaplan-Meier S(at) from (duration, events, censored) counts (driver side: one row
    per distinct duration). None when nobody is at risk."""
    at_risk = sum(e + c for _, e, c in counts)
    if at_risk == 0:
        return None
    surv = 1.0
    for duration, events, censored in sorted(counts):
        if duration > at:
            break
        if at_risk > 0 and events:
            surv *= 1.0 - events / at_risk
        at_risk -= events + censored
    return surv


# ----------------------------------------------------------------------------- metrics


@dataclass
class Metrics:
    rows: int
    base_rate: float
    roc_auc: float
    pr_auc: float
    brier: float
    log_loss: float
    capacity: int
    precision_at_capacity: float
    lift_at_capacity: float

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        return {f"{prefix}{k}": float(v) for k, v in self.__dict__.items()}


def capacity_for(n: int, cfg: ChurnSettings) -> int:
    if cfg.capacity_persons > 0:
        return min(n, cfg.capacity_persons)
    return max(1, math.ceil(n * cfg.capacity_share))


def evaluate(scored: DataFrame, cfg: ChurnSettings, score: str = PROB) -> Metrics:
    """Metrics of `score` (higher = more likely to churn) against LABEL."""
    df = scored.select(
        F.col(score).cast("double").alias("s"), F.col(LABEL).cast("double").alias("y")
    )
    df = df.cache()
    agg = df.agg(
        F.count(F.lit(1)).alias("n"),
        F.avg("y").alias("rate"),
        F.avg((F.col("s") - F.col("y")) ** 2).alias("brier"),
        F.avg(
            -(
                F.col("y") * F.log(F.greatest(F.least("s", F.lit(1 - 1e-15)), F.lit(1e-15)))
                + (1 - F.col("y"))
                * F.log(1 - F.greatest(F.least("s", F.lit(1 - 1e-15)), F.lit(1e-15)))
            )
        ).alias("log_loss"),
    ).first()
    n = int(agg["n"])
    ev = BinaryClassificationEvaluator(rawPredictionCol="s", labelCol="y")
    roc = ev.setMetricName("areaUnderROC").evaluate(df) if n else float("nan")
    pr = ev.setMetricName("areaUnderPR").evaluate(df) if n else float("nan")
    cap = capacity_for(n, cfg)
    top = df.orderBy(F.desc("s")).limit(cap).agg(F.avg("y")).first()[0] or 0.0
    rate = float(agg["rate"] or 0.0)
    df.unpersist()
    return Metrics(
        rows=n,
        base_rate=rate,
        roc_auc=roc,
        pr_auc=pr,
        brier=float(agg["brier"]) if n else float("nan"),
        log_loss=float(agg["log_loss"]) if n else float("nan"),
        capacity=cap,
        precision_at_capacity=float(top),
        lift_at_capacity=float(top) / rate if rate else float("nan"),
    )


def calibration_table(scored: DataFrame, bins: int = 10) -> list[dict]:
    """Deciles of predicted probability: mean predicted vs observed rate."""
    d = scored.select(
        F.ntile(bins).over(Window.partitionBy(F.lit(1)).orderBy(PROB)).alias("decile"),
        F.col(PROB).alias("p"),
        F.col(LABEL).alias("y"),
    )
    rows = d.groupBy("decile").agg(
        F.count(F.lit(1)).alias("n"),
        F.avg("p").alias("mean_predicted"),
        F.avg("y").alias("observed"),
    )
    return [r.asDict() for r in rows.orderBy("decile").collect()]


def curve_points(
    scored: DataFrame, max_rows: int = 20000, seed: int = 7
) -> list[tuple[float, float]]:
    """(score, label) pairs for plots: all rows, or a sample when there are many."""
    n = scored.count()
    df = scored if n <= max_rows else scored.sample(False, max_rows / n, seed)
    return [(float(r[0]), float(r[1])) for r in df.select(PROB, LABEL).collect()]


def roc_pr_lift(points: Sequence[tuple[float, float]]) -> dict[str, list[float]]:
    """ROC, PR and cumulative-lift curves from (score, label) pairs (driver-side, small)."""
    pts = sorted(points, key=lambda p: -p[0])
    pos = sum(y for _, y in pts) or 1.0
    neg = (len(pts) - sum(y for _, y in pts)) or 1.0
    tp = fp = 0.0
    fpr, tpr, prec, rec, share, lift = [0.0], [0.0], [], [], [], []
    rate = pos / len(pts) if pts else 1.0
    for i, (_, y) in enumerate(pts, start=1):
        tp += y
        fp += 1 - y
        fpr.append(fp / neg)
        tpr.append(tp / pos)
        prec.append(tp / i)
        rec.append(tp / pos)
        share.append(i / len(pts))
        lift.append((tp / i) / rate)
    return {"fpr": fpr, "tpr": tpr, "precision": prec, "recall": rec, "share": share, "lift": lift}


def concordance_index(rows: Sequence[tuple[float, float, float]]) -> float:
    """Harrell's C for (duration, observed, predicted_duration); ties in prediction = 1/2."""
    data = sorted(rows)
    conc = ties = total = 0.0
    for i, (ti, ei, pi) in enumerate(data):
        if not ei:
            continue
        for tj, _, pj in data[i + 1 :]:
            if tj <= ti:
                continue
            total += 1
            if pi < pj:
                conc += 1
            elif pi == pj:
                ties += 1
    return (conc + 0.5 * ties) / total if total else float("nan")


def spearman(a: DataFrame, b: DataFrame, col: str = PROB) -> float:
    """Rank correlation of two score columns over the persons both scored."""
    ra = a.select(
        "person_id", F.percent_rank().over(Window.partitionBy(F.lit(1)).orderBy(col)).alias("ra")
    )
    rb = b.select(
        "person_id", F.percent_rank().over(Window.partitionBy(F.lit(1)).orderBy(col)).alias("rb")
    )
    return float(ra.join(rb, "person_id").agg(F.corr("ra", "rb")).first()[0] or float("nan"))
