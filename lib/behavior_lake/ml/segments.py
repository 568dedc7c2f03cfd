"""Behavioral segmentation: Spark ML pipeline, k by silhouette, stability, naming, drift.

The fitted PipelineModel takes raw gold.user_features columns: it applies the catalog's
documented imputation (`coalesce(x, impute_value)`), a median Imputer for anything still
missing, clipping to the training quantiles (winsorizing), log1p for heavy-tailed counts,
standard scaling, then the clustering model. So scoring needs nothing but a feature
snapshot.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.clustering import BisectingKMeans, GaussianMixture, KMeans
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.feature import Imputer, SQLTransformer, StandardScaler, VectorAssembler
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from behavior_lake.config import SegmentSettings
from behavior_lake.ml import run_concurrently

log = logging.getLogger(__name__)
SEGMENT_COL = "segment_id"
VECTOR_COL = "features_scaled"


def _f(name: str) -> str:
    return f"{name}__f"


def _t(name: str) -> str:
    return f"{name}__t"


Bounds = Mapping[str, tuple[float, float]]


def _filled(c: str, fills: Mapping[str, float]) -> str:
    if c in fills and fills[c] is not None:
        return f"CAST(coalesce(`{c}`, {float(fills[c])!r}) AS DOUBLE)"
    return f"CAST(`{c}` AS DOUBLE)"


def clip_bounds(train: DataFrame, cfg: SegmentSettings, fills: Mapping[str, float]) -> Bounds:
    """Per feature, the [q, 1 - q] quantiles of the training rows (empty when q = 0; a
    feature whose quantiles are not finite numbers is left unclipped)."""
    q = cfg.winsorize_quantile
    if q <= 0:
        return {}
    feats = list(cfg.features)
    cols = train.selectExpr(*[f"{_filled(c, fills)} AS `{c}`" for c in feats])
    qs = cols.approxQuantile(feats, [q, 1 - q], 0.001)
    return {
        c: (v[0], v[1])
        for c, v in zip(feats, qs, strict=True)
        if len(v) == 2 and all(math.isfinite(x) for x in v)
    }


def make_pipeline(
    cfg: SegmentSettings, k: int, fills: Mapping[str, float], bounds: Bounds | None = None
) -> Pipeline:
    feats = list(cfg.features)
    bounds = bounds or {}

    def prep(c: str) -> str:
        x = _filled(c, fills)
        if c in bounds:  # clip, but keep nulls null for the Imputer (greatest skips nulls)
            lo, hi = bounds[c]
            x = f"CASE WHEN {x} IS NULL THEN NULL ELSE least(greatest({x}, {lo!r}D), {hi!r}D) END"
        return f"{x} AS `{_f(c)}`"

    prep_sql = ", ".join(prep(c) for c in feats)
    logged = set(cfg.log_features)
    trans = ", ".join(
        f"log1p(greatest(`{_f(c)}`, 0D)) AS `{_t(c)}`" if c in logged else f"`{_f(c)}` AS `{_t(c)}`"
        for c in feats
    )
    stages = [
        SQLTransformer(statement=f"SELECT *, {prep_sql} FROM __THIS__"),
        Imputer(inputCols=[_f(c) for c in feats], outputCols=[_f(c) for c in feats]).setStrategy(
            "median"
        ),
        SQLTransformer(statement=f"SELECT *, {trans} FROM __THIS__"),
        VectorAssembler(inputCols=[_t(c) for c in feats], outputCol="features_raw"),
        # Bisecting k-means splits a cluster by perturbing its center in proportion to the
        # center's norm: on mean-centered data the root center is 0 and it never splits.
        StandardScaler(
            inputCol="features_raw",
            outputCol=VECTOR_COL,
            withMean=cfg.algorithm != "bisecting_kmeans",
            withStd=True,
        ),
        _estimator(cfg, k),
    ]
    return Pipeline(stages=stages)


def _estimator(cfg: SegmentSettings, k: int):
    common = dict(featuresCol=VECTOR_COL, predictionCol=SEGMENT_COL, k=k, seed=cfg.seed)
    if cfg.algorithm == "kmeans":
        return KMeans(maxIter=cfg.max_iter, **common)
    if cfg.algorithm == "bisecting_kmeans":
        return BisectingKMeans(maxIter=cfg.max_iter, **common)
    return GaussianMixture(maxIter=cfg.max_iter, probabilityCol="segment_probability", **common)


@dataclass
class KResult:
    k: int
    silhouette: float
    shares: dict[int, float]
    model: PipelineModel

    @property
    def min_share(self) -> float:
        return min(self.shares.values()) if self.shares else 0.0


def silhouette(pred: DataFrame) -> float:
    ev = ClusteringEvaluator(featuresCol=VECTOR_COL, predictionCol=SEGMENT_COL)
    return float(ev.evaluate(pred))


SERVED_COL = "prediction"  # what MLflow's pyfunc serving returns for a Spark model


def with_published_ids(model: PipelineModel, ids: Mapping[int, int]) -> PipelineModel:
    """The model as registered: its pipeline plus a last stage that maps the clustering's
    own cluster number to the published (stable) segment id, as `prediction` (the column
    MLflow's pyfunc serving returns), so a served model answers in published ids."""
    cases = " ".join(f"WHEN {int(c)} THEN {int(i)}" for c, i in sorted(ids.items()))
    expr = f"CASE {SEGMENT_COL} {cases} ELSE {SEGMENT_COL} END" if cases else SEGMENT_COL
    stage = SQLTransformer(statement=f"SELECT *, CAST({expr} AS INT) AS {SERVED_COL} FROM __THIS__")
    return PipelineModel(stages=[*model.stages, stage])


def shares_of(pred: DataFrame, ids: int | Sequence[int]) -> dict[int, float]:
    """Share of rows per segment id: ids 0..k-1 for an int, else the given ids (plus any
    id the frame holds that is not among them)."""
    counts = {r[0]: r[1] for r in pred.groupBy(SEGMENT_COL).count().collect()}
    total = sum(counts.values()) or 1
    wanted = list(range(ids)) if isinstance(ids, int) else list(ids)
    wanted += sorted(i for i in counts if i not in wanted)
    return {i: counts.get(i, 0) / total for i in wanted}


def fit_pipeline(
    data: DataFrame, cfg: SegmentSettings, k: int, fills: Mapping[str, float]
) -> PipelineModel:
    """Fit the whole pipeline on `data` (clip bounds from `data` too)."""
    return make_pipeline(cfg, k, fills, clip_bounds(data, cfg, fills)).fit(data)


def fit_range(
    train: DataFrame, cfg: SegmentSettings, fills: Mapping[str, float], parallelism: int = 1
) -> list[KResult]:
    """One fit per k in k_min..k_max (up to `parallelism` at once), scored by silhouette
    and segment shares on `train`; results in k order."""
    bounds = clip_bounds(train, cfg, fills)

    def fit_k(k: int) -> KResult:
        model = make_pipeline(cfg, k, fills, bounds).fit(train)
        pred = model.transform(train).select(VECTOR_COL, SEGMENT_COL).cache()
        shares = shares_of(pred, k)
        used = sum(1 for v in shares.values() if v > 0)
        # the evaluator needs two clusters; a degenerate fit scores the worst silhouette
        res = KResult(k, silhouette(pred) if used > 1 else -1.0, shares, model)
        pred.unpersist()
        return res

    ks = range(cfg.k_min, cfg.k_max + 1)
    out = run_concurrently([partial(fit_k, k) for k in ks], parallelism)
    for res in out:
        log.info(
            "segments: k=%d silhouette=%.3f smallest segment %.1f%%",
            res.k,
            res.silhouette,
            100 * res.min_share,
        )
    return out


def choose_k(results: Sequence[KResult], min_share: float) -> tuple[KResult, str | None]:
    """Best silhouette among k whose every segment has >= min_share of persons.

    When no k qualifies, the best silhouette overall is returned with the reason (the
    quality gate then fails)."""
    ok = [r for r in results if r.min_share >= min_share]
    if ok:
        return max(ok, key=lambda r: (r.silhouette, -r.k)), None
    best = max(results, key=lambda r: (r.silhouette, -r.k))
    return best, (
        f"no k in {[r.k for r in results]} keeps every segment >= {min_share:.1%} of persons"
    )


# ----------------------------------------------------------------------------- stability


def adjusted_rand_index(contingency: Mapping[tuple[int, int], int]) -> float:
    """ARI from the counts of (label_a, label_b) pairs (Hubert & Arabie)."""

    def c2(n: float) -> float:
        return n * (n - 1) / 2

    n = sum(contingency.values())
    if n < 2:
        return 1.0
    rows: dict[int, int] = {}
    cols: dict[int, int] = {}
    for (a, b), c in contingency.items():
        rows[a] = rows.get(a, 0) + c
        cols[b] = cols.get(b, 0) + c
    index = sum(c2(c) for c in contingency.values())
    sum_a = sum(c2(c) for c in rows.values())
    sum_b = sum(c2(c) for c in cols.values())
    expected = sum_a * sum_b / c2(n)
    top = (sum_a + sum_b) / 2
    if math.isclose(top, expected):
        return 1.0
    return (index - expected) / (top - expected)


def ari_between(a: DataFrame, b: DataFrame, key: str = "person_id") -> float:
    """ARI of two assignments (key, segment_id) over the keys both have."""
    pairs = a.select(key, F.col(SEGMENT_COL).alias("a")).join(
        b.select(key, F.col(SEGMENT_COL).alias("b")), key
    )
    cont = {(r.a, r.b): r["count"] for r in pairs.groupBy("a", "b").count().collect()}
    return adjusted_rand_index(cont)


@dataclass
class Stability:
    bootstrap_ari: list[float] = field(default_factory=list)
    previous_window_ari: float | None = None

    @property
    def stability_ari(self) -> float:
        values = [*self.bootstrap_ari]
        if self.previous_window_ari is not None:
            values.append(self.previous_window_ari)
        return sum(values) / len(values) if values else float("nan")


def stability(
    train: DataFrame,
    base: DataFrame,
    cfg: SegmentSettings,
    k: int,
    fills: Mapping[str, float],
    previous: DataFrame | None,
    parallelism: int = 1,
) -> Stability:
    """Refit on bootstrap samples and on the previous window (up to `parallelism` fits
    at once); ARI against `base` (the chosen model's assignments of `train`)."""

    def refit_ari(data: DataFrame) -> float:
        return ari_between(base, fit_pipeline(data, cfg, k, fills).transform(train))

    samples = [
        train.sample(withReplacement=True, fraction=cfg.bootstrap_fraction, seed=cfg.seed + i)
        for i in range(cfg.bootstrap_rounds)
    ]
    with_previous = previous is not None and previous.limit(1).count() > 0
    if with_previous:
        samples.append(previous)
    aris = run_concurrently([partial(refit_ari, d) for d in samples], parallelism)
    st = Stability()
    st.bootstrap_ari = aris[: cfg.bootstrap_rounds]
    if with_previous:
        st.previous_window_ari = aris[-1]
    return st


# ----------------------------------------------------------------------------- profiles


def profiles(pred: DataFrame, cfg: SegmentSettings) -> list[dict]:
    """Per segment: size, share, means of the (imputed) features and centroid z-scores
    (segment mean of the transformed feature minus the overall mean, over the overall
    standard deviation)."""
    overall = pred.agg(
        *[F.avg(_t(c)).alias(f"m{i}") for i, c in enumerate(cfg.features)],
        *[F.stddev_pop(_t(c)).alias(f"s{i}") for i, c in enumerate(cfg.features)],
    ).first()
    aggs = [F.count(F.lit(1)).alias("size")]
    aggs += [F.avg(_f(c)).alias(f"mean__{c}") for c in cfg.features]
    aggs += [F.avg(_t(c)).alias(f"t__{c}") for c in cfg.features]
    rows = [r.asDict() for r in pred.groupBy(SEGMENT_COL).agg(*aggs).collect()]
    total = sum(r["size"] for r in rows) or 1

    def z(r: dict, i: int, c: str) -> float:
        sd = overall[f"s{i}"] or 0.0
        return (r[f"t__{c}"] - overall[f"m{i}"]) / sd if sd > 0 else 0.0

    out = []
    for r in sorted(rows, key=lambda r: r[SEGMENT_COL]):
        out.append(
            {
                "segment_id": int(r[SEGMENT_COL]),
                "size": int(r["size"]),
                "share": r["size"] / total,
                "means": {c: r[f"mean__{c}"] for c in cfg.features},
                "z": {c: z(r, i, c) for i, c in enumerate(cfg.features)},
            }
        )
    return out


NAMING_RULES = """\
Segment names come from the centroid z-scores (standardized, log-scaled features),
first matching rule wins; a name already taken gets a numeric suffix:
1. value = mean z of (orders_30d, revenue_30d) >= 0.5 and frequency = mean z of
   (sessions_30d, active_days_30d) >= 0.5  -> "high-value frequent buyers"
2. value >= 0.5                             -> "high-value occasional buyers"
3. recency_days_event z >= 0.5 and frequency < 0 -> "lapsing low-activity users"
4. tenure_days z <= -0.5                    -> "new users"
5. checkout_events_30d z >= 0.5             -> "checkout-heavy deal seekers"
6. frequency >= 0.3                         -> "frequent browsers"
7. otherwise                                -> "occasional visitors"
Features missing from the configured list count as 0. segments.names in config maps a
derived name to the name to publish.
"""


def derive_name(z: Mapping[str, float]) -> str:
    g = lambda c: float(z.get(c) or 0.0)  # noqa: E731
    value = (g("orders_30d") + g("revenue_30d")) / 2
    freq = (g("sessions_30d") + g("active_days_30d")) / 2
    if value >= 0.5 and freq >= 0.5:
        return "high-value frequent buyers"
    if value >= 0.5:
        return "high-value occasional buyers"
    if g("recency_days_event") >= 0.5 and freq < 0:
        return "lapsing low-activity users"
    if g("tenure_days") <= -0.5:
        return "new users"
    if g("checkout_events_30d") >= 0.5:
        return "checkout-heavy deal seekers"
    if freq >= 0.3:
        return "frequent browsers"
    return "occasional visitors"


def segment_names(profs: Sequence[dict], overrides: Mapping[str, str]) -> dict[int, str]:
    names: dict[int, str] = {}
    taken: dict[str, int] = {}
    for p in sorted(profs, key=lambda p: -p["size"]):
        base = derive_name(p["z"])
        base = overrides.get(base, base)
        taken[base] = taken.get(base, 0) + 1
        names[p["segment_id"]] = base if taken[base] == 1 else f"{base} ({taken[base]})"
    return names


def share_psi(current: Mapping[int, float], reference: Mapping[int, float]) -> float:
    """PSI between two segment-share distributions (shares floored at 1e-4)."""
    total = 0.0
    for seg in set(current) | set(reference):
        a = max(current.get(seg, 0.0), 1e-4)
        e = max(reference.get(seg, 0.0), 1e-4)
        total += (a - e) * math.log(a / e)
    return total


def gate(
    sil: float, stab: float, reason_k: str | None, cfg: SegmentSettings
) -> tuple[bool, list[str]]:
    reasons = []
    if reason_k:
        reasons.append(reason_k)
    if not sil >= cfg.gate.min_silhouette:
        reasons.append(f"silhouette {sil:.3f} < gate.min_silhouette {cfg.gate.min_silhouette}")
    if not stab >= cfg.gate.min_stability_ari:
        reasons.append(
            f"stability_ari {stab:.3f} < gate.min_stability_ari {cfg.gate.min_stability_ari}"
        )
    return not reasons, reasons
