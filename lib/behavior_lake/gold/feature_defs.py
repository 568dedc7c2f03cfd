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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from behavior_lake.config import FeatureSettings
from behavior_lake.contracts.gold import (
    CATALOG,
    PATH_VOCABULARY,
    USER_FEATURES,
    features_table,
)
from behavior_lake.contracts.silver import EVENTS, SESSIONS
from behavior_lake.contracts.taxonomy import Taxonomy
from behavior_lake.lake.base import TableSpec

log = logging.getLogger(__name__)

EVENTS_SRC = (EVENTS,)
SESSIONS_SRC = (SESSIONS.name,)
PATHS_SRC = (EVENTS, PATH_VOCABULARY.name)
ORDER_EVENT = "order_completed"
KEYS = ("person_id", "as_of_date")
DOUBLE = T.DoubleType()

# The frames a feature can be aggregated over (one row per source unit and as_of_date):
#   days      one row per person, active day (event_date < as_of) -> d_* columns, `age`
#   sessions  one row per session ended before as_of -> s_* columns, `age`
#   ngrams    one row per person, day, vocabulary slot -> slot, n, `age`
#   lag       the same person's features one snapshot interval earlier (prefix p_)
GROUPS = ("days", "sessions", "ngrams", "lag")


@dataclass(frozen=True, kw_only=True)
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


def categories(taxonomy: Taxonomy) -> list[str]:
    """The taxonomy's event categories (one count feature each)."""
    return sorted({e.category for e in taxonomy.events.values()})


def _collector(out: list[FeatureDef]) -> Callable[..., None]:
    def add(**kw: Any) -> None:
        out.append(FeatureDef(**kw))

    return add


class _Constants(NamedTuple):
    cap: float  # recency cap (days)
    r: int  # trend: recent window
    b: int  # trend: base window before it
    ratio: float  # b / r
    mix_w: int  # the mix window: 30 days, or the largest window below it


def _constants(cfg: FeatureSettings) -> _Constants:
    r, b = cfg.trend_recent_days, cfg.trend_base_days
    mix_w = 30 if 30 in cfg.windows_days else max(cfg.windows_days)
    return _Constants(float(cfg.recency_cap_days), r, b, b / r, mix_w)


ZERO = "none: a count over no activity is 0"
LONG = T.LongType()


def _recency_features(cfg: FeatureSettings) -> list[FeatureDef]:
    """Recency and tenure."""
    cap = _constants(cfg).cap
    out: list[FeatureDef] = []
    add = _collector(out)

    add(
        name="recency_days_event",
        group="days",
        expr=_days_since(F.max("d_last_ts")),
        definition="days from the last event to as_of_date 00:00 UTC",
        window_days=None,
        unit="days",
        imputation="never null (rows exist only for persons with an event)",
        sources=EVENTS_SRC,
    )
    add(
        name="recency_days_purchase",
        group="days",
        expr=_days_since(F.max("d_last_order_ts")),
        definition=f"days from the last {ORDER_EVENT} event to as_of_date",
        window_days=None,
        unit="days",
        imputation=f"null when the person never purchased; impute() uses recency_cap_days ({cap:g})",
        sources=EVENTS_SRC,
        fill=cap,
    )
    add(
        name="tenure_days",
        group="days",
        expr=_days_since(F.min("d_first_ts")),
        definition="days from the person's first event to as_of_date",
        window_days=None,
        unit="days",
        imputation="never null",
        sources=EVENTS_SRC,
    )
    return out


def _rfm_features(cfg: FeatureSettings, categories: Sequence[str]) -> list[FeatureDef]:
    """Frequency and monetary per window (the digital RFM)."""
    out: list[FeatureDef] = []
    add = _collector(out)

    for w in cfg.windows_days:
        add(
            name=f"events_{w}d",
            group="days",
            expr=_sum_if(_within(w), "d_events"),
            definition=f"events in the {w} days before as_of_date",
            window_days=w,
            unit="events",
            imputation=ZERO,
            sources=EVENTS_SRC,
            dtype=LONG,
            fill=0,
        )
        add(
            name=f"active_days_{w}d",
            group="days",
            expr=_sum_if(_within(w), F.lit(1)),
            definition=f"days with at least one event in the {w} days before as_of_date",
            window_days=w,
            unit="days",
            imputation=ZERO,
            sources=EVENTS_SRC,
            dtype=LONG,
            fill=0,
        )
        add(
            name=f"orders_{w}d",
            group="days",
            expr=_sum_if(_within(w), "d_orders"),
            definition=f"{ORDER_EVENT} events in the {w} days before as_of_date",
            window_days=w,
            unit="orders",
            imputation=ZERO,
            sources=EVENTS_SRC,
            dtype=LONG,
            fill=0,
        )
        add(
            name=f"revenue_{w}d",
            group="days",
            expr=_sum_if(_within(w), "d_revenue").cast("double"),
            definition=f"sum of revenue of {ORDER_EVENT} events in the {w} days before as_of_date",
            window_days=w,
            unit="currency units (as sent)",
            imputation=ZERO,
            sources=EVENTS_SRC,
            fill=0.0,
        )
        for cat in categories:
            add(
                name=f"{slug(cat)}_events_{w}d",
                group="days",
                expr=_sum_if(_within(w), f"d_cat_{slug(cat)}"),
                definition=f"events of taxonomy category '{cat}' in the {w} days before as_of_date",
                window_days=w,
                unit="events",
                imputation=ZERO,
                sources=EVENTS_SRC,
                dtype=LONG,
                fill=0,
            )
    return out


def _trend_features(cfg: FeatureSettings) -> list[FeatureDef]:
    """Trend: recent window against the base window before it, +1 smoothed."""
    k = _constants(cfg)
    r, b, ratio = k.r, k.b, k.ratio
    out: list[FeatureDef] = []
    add = _collector(out)

    add(
        name=f"events_trend_{r}_{b}",
        group="days",
        expr=_trend("d_events", r, b, ratio),
        definition=f"(events in the last {r} days + 1) / (events in the {b} days before them scaled to "
        f"{r} days + 1); 1 = steady, > 1 growing, < 1 declining",
        window_days=r + b,
        unit="ratio",
        imputation="never null (+1 smoothing)",
        sources=EVENTS_SRC,
        fill=1.0,
    )
    return out


def _trend(value, r: int, b: int, ratio: float) -> Column:
    """(sum over the last r days + 1) / (sum over the b days before, scaled to r days,
    + 1): 1 = steady, > 1 growing, < 1 declining; never null."""
    recent = _sum_if(_within(r), value)
    base = _sum_if((F.col("age") > r) & _within(r + b), value)
    return (recent + 1) / (base / ratio + 1)


def _engagement_features(cfg: FeatureSettings) -> list[FeatureDef]:
    """Time-decayed engagement."""
    out: list[FeatureDef] = []
    add = _collector(out)

    hl = float(cfg.engagement_half_life_days)
    add(
        name="engagement_score",
        group="days",
        expr=F.sum(
            (F.col("d_events") * F.pow(F.lit(0.5), F.col("age") / F.lit(hl))).cast("decimal(30,12)")
        ).cast("double"),
        definition=f"sum over days before as_of_date of events that day x 0.5^(age_days / {hl:g}); "
        "age_days = as_of_date - event_date (yesterday = 1)",
        window_days=None,
        unit="decayed events",
        imputation="never null",
        sources=EVENTS_SRC,
    )
    return out


def _platform_mix_features(cfg: FeatureSettings) -> list[FeatureDef]:
    """Platform mix (30 days, or the largest window below it)."""
    mix_w = _constants(cfg).mix_w
    out: list[FeatureDef] = []
    add = _collector(out)

    total = _sum_if(_within(mix_w), "d_events")
    known = F.lit(0)
    for p in cfg.platforms:
        part = _sum_if(_within(mix_w), f"d_platform_{slug(p)}")
        known = known + part
        add(
            name=f"platform_share_{slug(p)}_{mix_w}d",
            group="days",
            expr=F.when(total > 0, part / total),
            definition=f"share of events from platform '{p}' in the {mix_w} days before as_of_date",
            window_days=mix_w,
            unit="share",
            imputation="null when no events in the window; impute() uses 0",
            sources=EVENTS_SRC,
            fill=0.0,
        )
    add(
        name=f"platform_share_other_{mix_w}d",
        group="days",
        expr=F.when(total > 0, (total - known) / total),
        definition=f"share of events from other platforms in the {mix_w} days before as_of_date",
        window_days=mix_w,
        unit="share",
        imputation="null when no events in the window; impute() uses 0",
        sources=EVENTS_SRC,
        fill=0.0,
    )
    return out


def _sessions_features(cfg: FeatureSettings) -> list[FeatureDef]:
    """Sessions."""
    k = _constants(cfg)
    cap, r, b, ratio, mix_w = k.cap, k.r, k.b, k.ratio, k.mix_w
    out: list[FeatureDef] = []
    add = _collector(out)

    add(
        name="recency_days_session",
        group="sessions",
        expr=_days_since(F.max("s_end_ts")),
        definition="days from the end of the last session (ended before as_of_date) to as_of_date",
        window_days=None,
        unit="days",
        imputation=f"null when no session ended yet; impute() uses recency_cap_days ({cap:g})",
        sources=SESSIONS_SRC,
        fill=cap,
    )
    for w in cfg.windows_days:
        add(
            name=f"sessions_{w}d",
            group="sessions",
            expr=_sum_if(_within(w), F.lit(1)),
            definition=f"sessions that ended in the {w} days before as_of_date",
            window_days=w,
            unit="sessions",
            imputation=ZERO,
            sources=SESSIONS_SRC,
            dtype=LONG,
            fill=0,
        )
    sw = mix_w
    add(
        name=f"avg_session_duration_s_{sw}d",
        group="sessions",
        expr=F.avg(F.when(_within(sw), F.col("s_duration_s"))),
        definition=f"mean session duration of sessions ended in the {sw} days before as_of_date",
        window_days=sw,
        unit="seconds",
        imputation="null without sessions in the window; impute() uses 0",
        sources=SESSIONS_SRC,
        fill=0.0,
    )
    add(
        name=f"median_session_duration_s_{sw}d",
        group="sessions",
        expr=F.percentile_approx(
            F.when(_within(sw), F.col("s_duration_s")), F.lit(0.5), F.lit(10000)
        ),
        definition=f"median session duration (approximate, accuracy 1e-4) of sessions ended in the {sw} "
        "days before as_of_date",
        window_days=sw,
        unit="seconds",
        imputation="null without sessions in the window; impute() uses 0",
        sources=SESSIONS_SRC,
        fill=0.0,
    )
    add(
        name=f"bounce_rate_{sw}d",
        group="sessions",
        expr=F.avg(F.when(_within(sw), F.col("s_is_bounce").cast("double"))),
        definition=f"share of single-page/single-event sessions among sessions ended in the {sw} days "
        "before as_of_date",
        window_days=sw,
        unit="share",
        imputation="null without sessions in the window; impute() uses 0",
        sources=SESSIONS_SRC,
        fill=0.0,
    )
    add(
        name=f"sessions_trend_{r}_{b}",
        group="sessions",
        expr=_trend(F.lit(1), r, b, ratio),
        definition=f"(sessions in the last {r} days + 1) / (sessions in the {b} days before them scaled "
        f"to {r} days + 1)",
        window_days=r + b,
        unit="ratio",
        imputation="impute() uses 1 (no sessions at all)",
        sources=SESSIONS_SRC,
        fill=1.0,
    )
    return out


def _paths_features(cfg: FeatureSettings) -> list[FeatureDef]:
    """Click paths: fixed vocabulary slots."""
    mix_w = _constants(cfg).mix_w
    out: list[FeatureDef] = []
    add = _collector(out)

    pw = mix_w
    for slot in range(1, cfg.path_vocabulary_size + 1):
        add(
            name=f"path_{slot:02d}_{pw}d",
            group="ngrams",
            expr=_sum_if(_within(pw) & (F.col("slot") == slot), "n"),
            definition=f"occurrences within sessions of the click-path n-gram in slot {slot} of "
            f"gold.path_vocabulary, in the {pw} days before as_of_date",
            window_days=pw,
            unit="occurrences",
            imputation="0 (also when the slot is empty)",
            sources=PATHS_SRC,
            dtype=LONG,
            fill=0,
        )
    return out


def _lags_features(cfg: FeatureSettings) -> list[FeatureDef]:
    """Lags: the previous snapshot's key features."""
    mix_w = _constants(cfg).mix_w
    out: list[FeatureDef] = []
    add = _collector(out)

    for key in (f"events_{mix_w}d", f"sessions_{mix_w}d", f"revenue_{mix_w}d", "engagement_score"):
        add(
            name=f"lag_{key}",
            group="lag",
            expr=F.col(f"p_{key}"),
            definition=f"{key} of the previous snapshot (as_of_date - {cfg.snapshot_interval_days} days)",
            window_days=None,
            unit="as the source feature",
            imputation="0 when the person had no activity before the previous snapshot",
            sources=(USER_FEATURES,),
            dtype=DOUBLE,
            fill=0,
        )
    return out


def feature_defs(cfg: FeatureSettings, categories: Sequence[str]) -> list[FeatureDef]:
    """Every feature of gold.user_features, in column order."""
    defs = [
        *_recency_features(cfg),
        *_rfm_features(cfg, categories),
        *_trend_features(cfg),
        *_engagement_features(cfg),
        *_platform_mix_features(cfg),
        *_sessions_features(cfg),
        *_paths_features(cfg),
        *_lags_features(cfg),
    ]
    by_name = {d.name: d for d in defs}
    return [
        replace(d, dtype=by_name[d.name.removeprefix("lag_")].dtype) if d.group == "lag" else d
        for d in defs
    ]


def user_features_spec(defs: Sequence[FeatureDef]) -> TableSpec:
    """gold.user_features with one column per feature definition."""
    return features_table([T.StructField(d.name, d.dtype, True) for d in defs])


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
