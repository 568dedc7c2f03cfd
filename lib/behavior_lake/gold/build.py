"""Gold builds: user features (+ catalog, vocabulary, drift) and the reporting tables."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from pyspark.sql import functions as F

from behavior_lake.config import Settings
from behavior_lake.contracts.gold import (
    CATALOG,
    DAILY_KPIS,
    DRIFT,
    FUNNELS,
    PATH_VOCABULARY,
    PATHS,
    RETENTION_COHORTS,
    USER_FEATURES,
)
from behavior_lake.contracts.silver import EVENTS, SESSIONS
from behavior_lake.contracts.taxonomy import Taxonomy
from behavior_lake.gold.feature_build import build_user_features
from behavior_lake.gold.feature_defs import (
    catalog_rows,
    categories,
    feature_defs,
    user_features_spec,
)
from behavior_lake.gold.feature_drift import feature_drift
from behavior_lake.gold.feature_inputs import learn_vocabulary, session_ngrams
from behavior_lake.gold.kpis import daily_kpis
from behavior_lake.gold.reports import check_funnels, funnels, paths, retention_cohorts
from behavior_lake.lake import Lake, LakeError, TableSpec, Where
from behavior_lake.spark import cache_scope, persist_large

log = logging.getLogger(__name__)
EVENT_COLS = (
    "message_id",
    "person_id",
    "session_id",
    "event_ts",
    "event_date",
    "event_name",
    "category",
    "platform",
    "revenue",
)


def last_event_date(lake: Lake) -> date | None:
    if not lake.exists(EVENTS):
        return None
    return lake.read(EVENTS).agg(F.max("event_date")).first()[0]


def resolve_as_of(
    lake: Lake,
    settings: Settings,
    as_of: Sequence[date] = (),
    start: date | None = None,
    end: date | None = None,
    weeks: int | None = None,
) -> list[date]:
    """Explicit dates, or a series from `start` to `end` every snapshot interval (or the
    last `weeks` snapshots up to `end`), or (no arguments) the day after the last silver
    event: "as of now"."""
    step = settings.gold.features.snapshot_interval_days
    dates = set(as_of)
    last = last_event_date(lake)
    if weeks is not None:
        if weeks < 1:
            raise ValueError(f"--weeks: expected a positive number, got {weeks}")
        if start is not None:
            raise ValueError("--weeks and --from-date exclude each other")
        if last is None and end is None:
            return sorted(dates)
        end = end or last + timedelta(days=1)
        start = end - timedelta(days=step * (weeks - 1))
    if start or end:
        if last is None and end is None:
            raise ValueError("--to-date is needed while silver.events is empty")
        hi = end or last + timedelta(days=1)
        lo = start or hi
        if lo > hi:
            raise ValueError(f"--from-date {lo} is after --to-date {hi}")
        d = hi
        while d >= lo:  # anchored at the end so the newest snapshot is always built
            dates.add(d)
            d -= timedelta(days=step)
    if not dates:
        if last is None:
            return []
        dates.add(last + timedelta(days=1))
    if last is not None:
        beyond = sorted(d for d in dates if d > last + timedelta(days=1))
        if beyond:
            log.warning(
                "as_of_date(s) %s are after the last silver event (%s): those snapshots "
                "see no newer data than %s",
                [str(d) for d in beyond],
                last,
                last + timedelta(days=1),
            )
    return sorted(dates)


@dataclass
class FeatureStats:
    as_of_dates: list[date] = field(default_factory=list)
    rows: int = 0
    features: int = 0
    vocabulary_size: int = 0
    vocabulary_learned: bool = False
    drift_rows: int = 0
    drift_flagged: int = 0


def build_features(
    lake: Lake,
    settings: Settings,
    taxonomy: Taxonomy,
    as_of: Sequence[date],
    *,
    relearn_vocabulary: bool = False,
) -> FeatureStats:
    """Plan (the feature columns against the table) -> read the event columns once ->
    vocabulary, features, catalog -> replace the snapshots -> drift."""
    cfg = settings.gold.features
    stats = FeatureStats(as_of_dates=sorted(set(as_of)))
    cats = categories(taxonomy)
    defs = feature_defs(cfg, cats)
    spec = lake.declared(USER_FEATURES, user_features_spec(defs))
    stats.features = len(defs)
    if not stats.as_of_dates:
        log.warning("silver.events is empty or missing: no feature snapshot to build")
        return stats
    evolve = _features_evolve(lake, spec)
    for name in (PATH_VOCABULARY.name, CATALOG.name, DRIFT.name):
        lake.ensure(name)
    t0 = time.monotonic()
    where = Where.isin("as_of_date", stats.as_of_dates)
    with cache_scope(settings) as caches:
        events = lake.read(EVENTS).select(*EVENT_COLS)
        events = caches.large(events.filter(F.col("event_date") < F.lit(max(stats.as_of_dates))))
        n_events = events.count()
        log.info(
            "features: %d snapshot(s) %s..%s over %d events, %d features",
            len(stats.as_of_dates), stats.as_of_dates[0], stats.as_of_dates[-1], n_events,
            len(defs),
        )  # fmt: skip
        ngrams = caches.keep(session_ngrams(events, cfg.path_ngram_sizes))
        vocab = _vocabulary(lake, ngrams, stats, cfg, relearn_vocabulary)
        feats = build_user_features(
            events, lake.read(SESSIONS.name), vocab, stats.as_of_dates, cfg, cats, ngrams=ngrams
        ).select(*spec.schema.fieldNames())
        lake.ensure(spec.name)
        stats.rows = lake.overwrite(spec.name, feats, where=where, evolve=evolve).rows_written
        log.info(
            "features: wrote %d rows for %d snapshot(s) in %.1fs",
            stats.rows, len(stats.as_of_dates), time.monotonic() - t0,
        )  # fmt: skip
        lake.overwrite(CATALOG.name, catalog_rows(lake.spark, defs, cfg.owner))
    _drift(lake, settings, defs, stats, where)
    return stats


def _features_evolve(lake: Lake, spec: TableSpec) -> bool:
    """True when the configured features add columns to the table; an error when they
    drop some (the taxonomy or gold.features changed under existing snapshots)."""
    if not lake.exists(spec.name):
        return False
    have = set(lake.schema(spec.name).fieldNames())
    gone = sorted(have - set(spec.schema.fieldNames()))
    if gone:
        raise LakeError(
            f"{spec.name} has columns the configured features no longer produce "
            f"({', '.join(gone[:5])}{'...' if len(gone) > 5 else ''}): the taxonomy or "
            f"gold.features changed. Move {lake.path(spec.name)} aside and rerun to "
            "rebuild the snapshots you need"
        )
    return bool(set(spec.schema.fieldNames()) - have)  # new features: added columns


def _vocabulary(lake: Lake, ngrams, stats: FeatureStats, cfg, relearn: bool):
    """gold.path_vocabulary, learned first when it is empty or `relearn`."""
    vocab = lake.read(PATH_VOCABULARY.name)
    if relearn or vocab.limit(1).count() == 0:
        lo = min(stats.as_of_dates)
        start = lo - timedelta(days=cfg.path_training_days)
        learned = learn_vocabulary(ngrams, start, lo, cfg)
        lake.overwrite(PATH_VOCABULARY.name, learned.select(*PATH_VOCABULARY.schema.fieldNames()))
        stats.vocabulary_learned = True
        vocab = lake.read(PATH_VOCABULARY.name)
        log.info("features: learned the click-path vocabulary on [%s, %s)", start, lo)
    stats.vocabulary_size = vocab.count()
    return vocab


def _drift(lake: Lake, settings: Settings, defs, stats: FeatureStats, where: Where) -> None:
    table = lake.read(USER_FEATURES)
    have = sorted(r[0] for r in table.select("as_of_date").distinct().collect())
    pairs = []
    for d in stats.as_of_dates:
        earlier = [x for x in have if x < d]
        if earlier:
            pairs.append((d, earlier[-1]))
    if not pairs:
        log.info("drift: no earlier snapshot to compare with yet")
        return
    drift = feature_drift(table, pairs, [d.name for d in defs], settings.gold.features)
    drift = drift.select(*DRIFT.schema.fieldNames()).persist()
    stats.drift_rows = lake.overwrite(DRIFT.name, drift, where=where).rows_written
    flagged = drift.filter("is_flagged").select("feature", "as_of_date", "flag_reason")
    stats.drift_flagged = flagged.count()
    for r in flagged.orderBy("as_of_date", "feature").limit(10).collect():
        log.warning("drift: %s on %s: %s", r.feature, r.as_of_date, r.flag_reason)
    drift.unpersist()
    log.info(
        "drift: %d feature/snapshot comparisons, %d flagged", stats.drift_rows, stats.drift_flagged
    )


@dataclass
class ReportStats:
    rows: dict[str, int] = field(default_factory=dict)


def build_reports(lake: Lake, settings: Settings, taxonomy: Taxonomy) -> ReportStats:
    """gold.daily_kpis, retention_cohorts, funnels, paths: recomputed whole."""
    g = settings.gold
    known = {e.snake_name for e in taxonomy.events.values()}
    check_funnels(g.funnels, known)
    for name, event in g.cohorts.triggers.items():
        if event not in known:
            raise ValueError(
                f"gold.cohorts.triggers.{name}: unknown event {event!r}; expected a "
                "snake_case taxonomy event name"
            )
    stats = ReportStats()
    events = persist_large(lake.read(EVENTS).select(*EVENT_COLS), settings)
    sessions = lake.read(SESSIONS.name)
    outputs = [
        (DAILY_KPIS, lambda: daily_kpis(events, sessions)),
        (
            RETENTION_COHORTS,
            lambda: retention_cohorts(events, g.cohorts.weeks, g.cohorts.triggers),
        ),
        (FUNNELS, lambda: funnels(events, g.funnels)),
        (PATHS, lambda: paths(events, g.paths)),
    ]
    for i, (spec, make) in enumerate(outputs, start=1):
        t0 = time.monotonic()
        df = make()
        if df is None:
            log.info("step %d/%d %s: nothing configured", i, len(outputs), spec.name)
            continue
        res = lake.overwrite(spec.name, df.select(*spec.schema.fieldNames()))
        stats.rows[spec.name] = res.rows_written
        log.info(
            "step %d/%d %s: %d rows in %.1fs",
            i,
            len(outputs),
            spec.name,
            res.rows_written,
            time.monotonic() - t0,
        )
    events.unpersist()
    return stats
