"""gold.user_features: one row per person per as_of_date, point-in-time correct.

Only events strictly before `as_of_date` (00:00 UTC) contribute: an event counts when
`event_date < as_of_date`; a session counts when it ENDED before as_of_date; a click-path
n-gram counts when its LAST event is before as_of_date. So nothing at or after the cutoff
can leak into a snapshot.

Several as_of_dates are built in one pass: the events are first reduced to one row per
person and day (and the sessions / n-grams to small frames), cached once, then joined to
the (tiny, broadcast) list of as_of_dates and aggregated with conditional sums per window.

Every feature is declared once as a `FeatureDef` (its aggregation expression together
with its definition, sources, window, unit and imputation). The builder selects exactly
these definitions and `catalog_rows()` writes gold.feature_catalog from the same list, so
the catalog cannot drift from the code.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from behavior_lake.config import FeatureSettings
from behavior_lake.contracts.gold import CATALOG, DRIFT, VOCABULARY_SCHEMA
from behavior_lake.lake.base import TableSpec

log = logging.getLogger(__name__)

EVENTS_SRC = ("silver.events",)
SESSIONS_SRC = ("silver.sessions",)
PATHS_SRC = ("silver.events", "gold.path_vocabulary")
ORDER_EVENT = "order_completed"
KEYS = ("person_id", "as_of_date")
DOUBLE = T.DoubleType()

# The frames a feature can be aggregated over (one row per source unit and as_of_date):
#   days      one row per person, active day (event_date < as_of) -> d_* columns, `age`
#   sessions  one row per session ended before as_of -> s_* columns, `age`
#   ngrams    one row per person, day, vocabulary slot -> slot, n, `age`
#   lag       the same person's features one snapshot interval earlier (prefix p_)
GROUPS = ("days", "sessions", "ngrams", "lag")


@dataclass(frozen=True)
class FeatureDef:
    name: str
    group: str
    expr: Column
    definition: str
    window_days: int | None
    unit: str
    imputation: str
    sources: tuple[str, ...]
    dtype: T.DataType = DOUBLE
    fill: float | None = None  # value that replaces null by `impute()`


def _within(days: int) -> Column:
    return F.col("age") <= days


def _sum_if(cond: Column, value: Column | str) -> Column:
    v = F.col(value) if isinstance(value, str) else value
    return F.sum(F.when(cond, v).otherwise(F.lit(0)))


def _days_since(ts: Column) -> Column:
    asof_ts = F.to_timestamp(F.col("as_of_date"))
    return (F.unix_micros(asof_ts) - F.unix_micros(ts)) / F.lit(86_400_000_000.0)


def slug(value: str) -> str:
    out = "".join(c if c.isalnum() else "_" for c in value.lower()).strip("_")
    return out or "unknown"


def feature_defs(cfg: FeatureSettings, categories: Sequence[str]) -> list[FeatureDef]:
    """Every feature of gold.user_features, in column order."""
    defs: list[FeatureDef] = []
    cap = float(cfg.recency_cap_days)

    def add(
        name, group, expr, definition, window, unit, imputation, sources, dtype=None, fill=None
    ):
        defs.append(
            FeatureDef(
                name,
                group,
                expr,
                definition,
                window,
                unit,
                imputation,
                sources,
                dtype or T.DoubleType(),
                fill,
            )
        )

    zero = "none: a count over no activity is 0"
    long_t = T.LongType()
    # ---- recency and tenure
    add(
        "recency_days_event",
        "days",
        _days_since(F.max("d_last_ts")),
        "days from the last event to as_of_date 00:00 UTC",
        None,
        "days",
        "never null (rows exist only for persons with an event)",
        EVENTS_SRC,
    )
    add(
        "recency_days_purchase",
        "days",
        _days_since(F.max("d_last_order_ts")),
        f"days from the last {ORDER_EVENT} event to as_of_date",
        None,
        "days",
        f"null when the person never purchased; impute() uses recency_cap_days ({cap:g})",
        EVENTS_SRC,
        fill=cap,
    )
    add(
        "tenure_days",
        "days",
        _days_since(F.min("d_first_ts")),
        "days from the person's first event to as_of_date",
        None,
        "days",
        "never null",
        EVENTS_SRC,
    )
    # ---- frequency and monetary per window (the digital RFM)
    for w in cfg.windows_days:
        add(
            f"events_{w}d",
            "days",
            _sum_if(_within(w), "d_events"),
            f"events in the {w} days before as_of_date",
            w,
            "events",
            zero,
            EVENTS_SRC,
            long_t,
            0,
        )
        add(
            f"active_days_{w}d",
            "days",
            _sum_if(_within(w), F.lit(1)),
            f"days with at least one event in the {w} days before as_of_date",
            w,
            "days",
            zero,
            EVENTS_SRC,
            long_t,
            0,
        )
        add(
            f"orders_{w}d",
            "days",
            _sum_if(_within(w), "d_orders"),
            f"{ORDER_EVENT} events in the {w} days before as_of_date",
            w,
            "orders",
            zero,
            EVENTS_SRC,
            long_t,
            0,
        )
        add(
            f"revenue_{w}d",
            "days",
            # summed as decimals, exact in any order: a double sum depends on how the
            # rows are partitioned (the same data on a cluster gave 423.93000000000006)
            _sum_if(_within(w), "d_revenue").cast("double"),
            f"sum of revenue of {ORDER_EVENT} events in the {w} days before as_of_date",
            w,
            "currency units (as sent)",
            zero,
            EVENTS_SRC,
            fill=0.0,
        )
        for cat in categories:
            add(
                f"{slug(cat)}_events_{w}d",
                "days",
                _sum_if(_within(w), f"d_cat_{slug(cat)}"),
                f"events of taxonomy category '{cat}' in the {w} days before as_of_date",
                w,
                "events",
                zero,
                EVENTS_SRC,
                long_t,
                0,
            )
    # ---- trend: recent window against the base window before it, +1 smoothed
    r, b = cfg.trend_recent_days, cfg.trend_base_days
    ratio = b / r
    recent = _sum_if(_within(r), "d_events")
    base = _sum_if((F.col("age") > r) & _within(r + b), "d_events")
    add(
        f"events_trend_{r}_{b}",
        "days",
        (recent + 1) / (base / ratio + 1),
        f"(events in the last {r} days + 1) / (events in the {b} days before them scaled to "
        f"{r} days + 1); 1 = steady, > 1 growing, < 1 declining",
        r + b,
        "ratio",
        "never null (+1 smoothing)",
        EVENTS_SRC,
        fill=1.0,
    )
    # ---- time-decayed engagement
    hl = float(cfg.engagement_half_life_days)
    add(
        "engagement_score",
        "days",
        # each day's term fixed to 12 decimals, summed exactly: a double sum depends on
        # the order the rows arrive in (different file layouts gave ...231 vs ...233)
        F.sum(
            (F.col("d_events") * F.pow(F.lit(0.5), F.col("age") / F.lit(hl))).cast("decimal(30,12)")
        ).cast("double"),
        f"sum over days before as_of_date of events that day x 0.5^(age_days / {hl:g}); "
        "age_days = as_of_date - event_date (yesterday = 1)",
        None,
        "decayed events",
        "never null",
        EVENTS_SRC,
    )
    # ---- platform mix (30 days, or the largest window below it)
    mix_w = 30 if 30 in cfg.windows_days else max(cfg.windows_days)
    total = _sum_if(_within(mix_w), "d_events")
    known = F.lit(0)
    for p in cfg.platforms:
        part = _sum_if(_within(mix_w), f"d_platform_{slug(p)}")
        known = known + part
        add(
            f"platform_share_{slug(p)}_{mix_w}d",
            "days",
            F.when(total > 0, part / total),
            f"share of events from platform '{p}' in the {mix_w} days before as_of_date",
            mix_w,
            "share",
            "null when no events in the window; impute() uses 0",
            EVENTS_SRC,
            fill=0.0,
        )
    add(
        f"platform_share_other_{mix_w}d",
        "days",
        F.when(total > 0, (total - known) / total),
        f"share of events from other platforms in the {mix_w} days before as_of_date",
        mix_w,
        "share",
        "null when no events in the window; impute() uses 0",
        EVENTS_SRC,
        fill=0.0,
    )
    # ---- sessions
    add(
        "recency_days_session",
        "sessions",
        _days_since(F.max("s_end_ts")),
        "days from the end of the last session (ended before as_of_date) to as_of_date",
        None,
        "days",
        f"null when no session ended yet; impute() uses recency_cap_days ({cap:g})",
        SESSIONS_SRC,
        fill=cap,
    )
    for w in cfg.windows_days:
        add(
            f"sessions_{w}d",
            "sessions",
            _sum_if(_within(w), F.lit(1)),
            f"sessions that ended in the {w} days before as_of_date",
            w,
            "sessions",
            zero,
            SESSIONS_SRC,
            long_t,
            0,
        )
    sw = mix_w
    add(
        f"avg_session_duration_s_{sw}d",
        "sessions",
        F.avg(F.when(_within(sw), F.col("s_duration_s"))),
        f"mean session duration of sessions ended in the {sw} days before as_of_date",
        sw,
        "seconds",
        "null without sessions in the window; impute() uses 0",
        SESSIONS_SRC,
        fill=0.0,
    )
    add(
        f"median_session_duration_s_{sw}d",
        "sessions",
        F.percentile_approx(F.when(_within(sw), F.col("s_duration_s")), F.lit(0.5), F.lit(10000)),
        f"median session duration (approximate, accuracy 1e-4) of sessions ended in the {sw} "
        "days before as_of_date",
        sw,
        "seconds",
        "null without sessions in the window; impute() uses 0",
        SESSIONS_SRC,
        fill=0.0,
    )
    add(
        f"bounce_rate_{sw}d",
        "sessions",
        F.avg(F.when(_within(sw), F.col("s_is_bounce").cast("double"))),
        f"share of single-page/single-event sessions among sessions ended in the {sw} days "
        "before as_of_date",
        sw,
        "share",
        "null without sessions in the window; impute() uses 0",
        SESSIONS_SRC,
        fill=0.0,
    )
    s_recent = _sum_if(_within(r), F.lit(1))
    s_base = _sum_if((F.col("age") > r) & _within(r + b), F.lit(1))
    add(
        f"sessions_trend_{r}_{b}",
        "sessions",
        (s_recent + 1) / (s_base / ratio + 1),
        f"(sessions in the last {r} days + 1) / (sessions in the {b} days before them scaled "
        f"to {r} days + 1)",
        r + b,
        "ratio",
        "impute() uses 1 (no sessions at all)",
        SESSIONS_SRC,
        fill=1.0,
    )
    # ---- click paths: fixed vocabulary slots
    pw = mix_w
    for slot in range(1, cfg.path_vocabulary_size + 1):
        add(
            f"path_{slot:02d}_{pw}d",
            "ngrams",
            _sum_if(_within(pw) & (F.col("slot") == slot), "n"),
            f"occurrences within sessions of the click-path n-gram in slot {slot} of "
            f"gold.path_vocabulary, in the {pw} days before as_of_date",
            pw,
            "occurrences",
            "0 (also when the slot is empty)",
            PATHS_SRC,
            long_t,
            0,
        )
    # ---- lags: the previous snapshot's key features
    for key in (f"events_{mix_w}d", f"sessions_{mix_w}d", f"revenue_{mix_w}d", "engagement_score"):
        add(
            f"lag_{key}",
            "lag",
            F.col(f"p_{key}"),
            f"{key} of the previous snapshot (as_of_date - {cfg.snapshot_interval_days} days)",
            None,
            "as the source feature",
            "0 when the person had no activity before the previous snapshot",
            ("gold.user_features",),
            None,
            0,
        )
    by_name = {d.name: d for d in defs}
    return [
        replace(d, dtype=by_name[d.name.removeprefix("lag_")].dtype) if d.group == "lag" else d
        for d in defs
    ]


def user_features_spec(defs: Sequence[FeatureDef]) -> TableSpec:
    fields = [
        T.StructField("person_id", T.StringType(), False),
        T.StructField("as_of_date", T.DateType(), False),
    ]
    fields += [T.StructField(d.name, d.dtype, True) for d in defs]
    fields.append(T.StructField("computed_at", T.TimestampType(), False))
    return TableSpec(
        name="gold.user_features",
        grain="one row per person per as_of_date (persons with an event before it)",
        partition_by=("as_of_date",),
        schema=T.StructType(fields),
    )


# ----------------------------------------------------------------------------- inputs


def daily_activity(
    events: DataFrame, categories: Sequence[str], platforms: Sequence[str]
) -> DataFrame:
    """One row per person and event_date with the per-day sums the features need."""
    is_order = F.col("event_name") == ORDER_EVENT
    aggs = [
        F.count(F.lit(1)).alias("d_events"),
        F.sum(is_order.cast("long")).alias("d_orders"),
        F.sum(F.when(is_order, F.col("revenue")).otherwise(F.lit(0).cast("decimal(18,2)"))).alias(
            "d_revenue"
        ),
        F.min("event_ts").alias("d_first_ts"),
        F.max("event_ts").alias("d_last_ts"),
        F.max(F.when(is_order, F.col("event_ts"))).alias("d_last_order_ts"),
    ]
    aggs += [
        F.sum((F.col("category") == c).cast("long")).alias(f"d_cat_{slug(c)}") for c in categories
    ]
    aggs += [
        F.sum((F.col("platform") == p).cast("long")).alias(f"d_platform_{slug(p)}")
        for p in platforms
    ]
    return events.groupBy("person_id", "event_date").agg(*aggs)


def session_rows(sessions: DataFrame) -> DataFrame:
    """One row per session, dated by its END (a session counts once it is over)."""
    return sessions.select(
        "person_id",
        F.to_date("session_end_ts").alias("s_date"),
        F.col("session_end_ts").alias("s_end_ts"),
        F.col("duration_s").alias("s_duration_s"),
        F.col("is_bounce").alias("s_is_bounce"),
    )


def session_ngrams(events: DataFrame, sizes: Iterable[int]) -> DataFrame:
    """One row per n-gram occurrence within a session: person_id, ngram, n, ngram_date.

    The n-gram is dated by its LAST event, so it only counts once all its events are
    before the cutoff. Event names are joined with ' > '.
    """
    sizes = sorted(set(sizes))
    w = Window.partitionBy("session_id").orderBy("event_ts", "message_id")
    base = events.select("person_id", "session_id", "event_ts", "message_id", "event_name")
    cols = [F.col("person_id")]
    for k in range(1, max(sizes)):
        base = base.withColumn(f"_n{k}", F.lead("event_name", k).over(w)).withColumn(
            f"_t{k}", F.lead("event_ts", k).over(w)
        )
    grams = []
    for n in sizes:
        names = [F.col("event_name")] + [F.col(f"_n{k}") for k in range(1, n)]
        grams.append(
            F.struct(
                F.concat_ws(" > ", *names).alias("ngram"),
                F.lit(n).alias("n"),
                F.to_date(F.col(f"_t{n - 1}")).alias("ngram_date"),
                F.col(f"_n{n - 1}").isNotNull().alias("ok"),
            )
        )
    out = base.select(*cols, F.explode(F.array(*grams)).alias("g")).filter("g.ok")
    return out.select("person_id", "g.ngram", "g.n", "g.ngram_date")


def learn_vocabulary(ngrams: DataFrame, start: date, end: date, cfg: FeatureSettings) -> DataFrame:
    """The `path_vocabulary_size` most informative n-grams seen in [start, end).

    Informative = splits persons: person share p between the configured min and max, ranked
    by p * (1 - p) (the variance of "has this n-gram"), then by occurrences, then name.
    """
    window = ngrams.filter(
        (F.col("ngram_date") >= F.lit(start)) & (F.col("ngram_date") < F.lit(end))
    )
    persons = window.select("person_id").distinct().count()
    if persons == 0:
        return window.sparkSession.createDataFrame([], VOCABULARY_SCHEMA)
    stats = window.groupBy("ngram", "n").agg(
        F.countDistinct("person_id").alias("persons"), F.count(F.lit(1)).alias("occurrences")
    )
    p = F.col("persons") / F.lit(persons)
    ranked = (
        stats.withColumn("person_share", p)
        .filter(
            (F.col("person_share") >= cfg.path_min_person_share)
            & (F.col("person_share") <= cfg.path_max_person_share)
        )
        .withColumn("score", p * (1 - p))
        .withColumn(
            "slot",
            F.row_number().over(
                Window.partitionBy(F.lit(1)).orderBy(
                    F.desc("score"), F.desc("occurrences"), F.asc("ngram")
                )
            ),
        )
        .filter(F.col("slot") <= cfg.path_vocabulary_size)
    )
    return ranked.select(
        F.col("slot").cast("int"),
        "ngram",
        F.col("n").cast("int"),
        "person_share",
        "occurrences",
        "score",
        F.lit(start).alias("learned_from"),
        F.lit(end).alias("learned_until"),
        F.current_timestamp().alias("learned_at"),
    )


# ----------------------------------------------------------------------------- build


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


# ----------------------------------------------------------------------------- catalog

PIT_RULES = {
    "days": "events with event_date < as_of_date",
    "sessions": "sessions whose session_end_ts < as_of_date",
    "ngrams": "n-grams whose last event is before as_of_date",
    "lag": "the snapshot one interval before as_of_date (same rules)",
}


def catalog_rows(spark: SparkSession, defs: Sequence[FeatureDef], owner: str) -> DataFrame:
    rows = [
        (
            d.name,
            i,
            d.group,
            d.definition,
            list(d.sources),
            d.window_days,
            d.unit,
            d.dtype.simpleString(),
            d.imputation,
            None if d.fill is None else float(d.fill),
            PIT_RULES[d.group],
            owner,
        )
        for i, d in enumerate(defs, start=1)
    ]
    df = spark.createDataFrame(rows, T.StructType(CATALOG.schema.fields[:-1]))
    return df.withColumn("updated_at", F.current_timestamp())


# ----------------------------------------------------------------------------- drift

PSI_EPS = 1e-4


def _long(features: DataFrame, names: Sequence[str]) -> DataFrame:
    """(as_of_date, feature, value) rows, nulls kept."""
    pairs = F.array(
        *[
            F.struct(F.lit(n).alias("feature"), F.col(n).cast("double").alias("value"))
            for n in names
        ]
    )
    return features.select("as_of_date", F.explode(pairs).alias("kv")).select(
        "as_of_date", "kv.feature", "kv.value"
    )


def feature_drift(
    features: DataFrame,
    pairs: Sequence[tuple[date, date]],
    names: Sequence[str],
    cfg: FeatureSettings,
) -> DataFrame:
    """PSI and null rate for each (snapshot, reference snapshot) pair and feature.

    Bins are the reference snapshot's deciles (`drift_bins` quantiles, duplicates merged);
    PSI = sum over bins (a - r) * ln(a / r) with shares floored at 1e-4. Nulls are left out
    of the PSI and measured by the null rates.
    """
    spark = features.sparkSession
    if not pairs:
        return spark.createDataFrame([], DRIFT.schema)
    pairs_df = spark.createDataFrame(list(pairs), "as_of_date date, reference_as_of_date date")
    dates = sorted({d for p in pairs for d in p})
    snap = features.filter(F.col("as_of_date").isin(dates))
    long = _long(snap, names).cache()
    probs = [i / cfg.drift_bins for i in range(1, cfg.drift_bins)]
    edges = long.groupBy(F.col("as_of_date").alias("reference_as_of_date"), "feature").agg(
        F.array_distinct(F.percentile_approx("value", probs, 10000)).alias("edges")
    )
    # each current value is binned with its reference's edges: bin = #edges < value
    nulls = long.groupBy("as_of_date", "feature").agg(
        F.count(F.lit(1)).alias("rows"),
        F.avg(F.col("value").isNull().cast("double")).alias("null_rate"),
    )
    side = pairs_df.select(
        "as_of_date",
        "reference_as_of_date",
        F.lit("cur").alias("side"),
        F.col("as_of_date").alias("src"),
    ).unionByName(
        pairs_df.select(
            "as_of_date",
            "reference_as_of_date",
            F.lit("ref").alias("side"),
            F.col("reference_as_of_date").alias("src"),
        )
    )
    binned = (
        long.filter(F.col("value").isNotNull())
        .join(F.broadcast(side), F.col("src") == long["as_of_date"])
        .drop(long["as_of_date"])
        .join(edges, ["reference_as_of_date", "feature"])
        .withColumn("bin", F.size(F.filter("edges", lambda e: e < F.col("value"))))
    )
    counts = binned.groupBy("as_of_date", "reference_as_of_date", "feature", "bin").agg(
        F.sum((F.col("side") == "cur").cast("double")).alias("c"),
        F.sum((F.col("side") == "ref").cast("double")).alias("r"),
    )
    w = Window.partitionBy("as_of_date", "reference_as_of_date", "feature")
    shares = counts.select(
        "as_of_date",
        "reference_as_of_date",
        "feature",
        F.greatest(F.col("c") / F.sum("c").over(w), F.lit(PSI_EPS)).alias("a"),
        F.greatest(F.col("r") / F.sum("r").over(w), F.lit(PSI_EPS)).alias("e"),
    )
    psi = shares.groupBy("as_of_date", "reference_as_of_date", "feature").agg(
        F.sum((F.col("a") - F.col("e")) * F.log(F.col("a") / F.col("e"))).alias("psi")
    )
    cur = nulls.alias("c")
    ref = nulls.select(
        F.col("as_of_date").alias("reference_as_of_date"),
        "feature",
        F.col("rows").alias("reference_rows"),
        F.col("null_rate").alias("reference_null_rate"),
    )
    out = (
        pairs_df.join(cur, "as_of_date")
        .join(ref, ["reference_as_of_date", "feature"])
        .join(psi, ["as_of_date", "reference_as_of_date", "feature"], "left")
    )
    psi_flag = F.coalesce(F.col("psi") > cfg.drift_psi_threshold, F.lit(False))
    null_flag = F.abs(F.col("null_rate") - F.col("reference_null_rate")) > F.lit(
        cfg.drift_null_rate_threshold
    )
    reason = F.concat_ws(
        "; ",
        F.when(
            psi_flag,
            F.format_string("psi %.3f > %s", F.col("psi"), F.lit(str(cfg.drift_psi_threshold))),
        ),
        F.when(
            null_flag,
            F.format_string(
                "null rate %.3f -> %.3f", F.col("reference_null_rate"), F.col("null_rate")
            ),
        ),
    )
    return out.select(
        "feature",
        "as_of_date",
        "reference_as_of_date",
        "psi",
        "null_rate",
        "reference_null_rate",
        "rows",
        "reference_rows",
        F.lit(float(cfg.drift_psi_threshold)).alias("psi_threshold"),
        (psi_flag | null_flag).alias("is_flagged"),
        F.when(psi_flag | null_flag, reason).alias("flag_reason"),
        F.current_timestamp().alias("computed_at"),
    )
