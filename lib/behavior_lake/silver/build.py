"""Incremental silver build: recompute only the persons new data touches.

A person's silver rows (events, sessions, rejects) are a deterministic function of
that person's whole bronze history and of the identity map, which is rebuilt from all
of bronze each run. So a run recomputes the *affected persons* — those with rows in
bronze batches not processed yet, plus the old and new owners of anonymous ids whose
owner changed (a late identify re-attributes earlier anonymous events) — and replaces
exactly their rows. Processing day by day therefore yields the same tables as one run
over everything (tested).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from pyspark.sql import DataFrame, Row
from pyspark.sql import functions as F

from behavior_lake.config import Settings
from behavior_lake.contracts.bronze import BRONZE_EVENTS
from behavior_lake.contracts.governance import RETENTION_RUNS
from behavior_lake.contracts.silver import (
    EVENTS,
    IDENTITY_MAP,
    REJECTS,
    SESSIONS,
    SILVER_BATCHES,
    silver_events_spec,
)
from behavior_lake.contracts.taxonomy import Taxonomy
from behavior_lake.lake import Lake, LakeError, TableSpec, Where, WriteResult
from behavior_lake.silver.conform import conform
from behavior_lake.silver.identity import (
    changed_persons,
    identity_links,
    identity_map,
    with_person,
)
from behavior_lake.silver.sessions import sessions_from_events, with_session_id
from behavior_lake.spark import Caches, cache_scope, session_conf

log = logging.getLogger(__name__)


@dataclass
class SilverStats:
    new_batches: int = 0
    affected_persons: int = 0
    bronze_rows: int = 0
    silver_rows: int = 0
    reject_rows: int = 0
    duplicate_rows: int = 0
    consent_dropped_rows: int = 0
    sessions: int = 0
    identity_links: int = 0
    capped_links: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    # silver rows kept with data-quality findings (taxonomy policy flag), per finding
    flagged_rows: int = 0
    findings: dict[str, int] = field(default_factory=dict)


def _processed_batches(lake: Lake) -> set[str]:
    if not lake.exists(SILVER_BATCHES.name):
        return set()
    return {
        r[0] for r in lake.read(SILVER_BATCHES.name).select("ingest_batch_id").distinct().collect()
    }


@dataclass
class SilverPlan:
    """What a run has to do: bronze, its batches, the ones not processed yet."""

    bronze: DataFrame
    batches: set[str]
    new_batches: list[str]
    full: bool


@dataclass
class SilverFrames:
    """The computed outputs of one run, before they are written."""

    new_map: DataFrame
    affected: DataFrame
    events: DataFrame
    sessions: DataFrame
    rejects: DataFrame
    counts: dict[str, int]


def build_silver(
    lake: Lake, settings: Settings, taxonomy: Taxonomy, run_id: str, full: bool = False
) -> SilverStats:
    """Plan (which bronze batches are new), compute (identity, conform, sessions, for the
    affected persons), write (replace their rows), record the processed batches."""
    events_spec = lake.declared(EVENTS, silver_events_spec(taxonomy))
    for name in (EVENTS, REJECTS.name, IDENTITY_MAP.name, SESSIONS.name, SILVER_BATCHES.name):
        lake.ensure(name)
    stats = SilverStats()
    plan = plan_silver(lake, full)
    if plan is None:
        return stats
    stats.new_batches = len(plan.new_batches)
    t0 = time.monotonic()
    with cache_scope(settings) as caches:
        frames = compute_silver(lake, plan, settings, taxonomy, events_spec, stats, caches)
        log.info("step 4/4 write")
        write_silver(lake, plan, frames, stats)
        _check_counts(stats, frames.counts)
        record_batches(lake, plan.new_batches, run_id)
    log.info(
        "silver built in %.1fs: affected_persons=%d bronze=%d silver=%d rejects=%d dup=%d "
        "consent_dropped=%d sessions=%d",
        time.monotonic() - t0,
        stats.affected_persons,
        stats.bronze_rows,
        stats.silver_rows,
        stats.reject_rows,
        stats.duplicate_rows,
        stats.consent_dropped_rows,
        stats.sessions,
    )
    return stats


def plan_silver(lake: Lake, full: bool) -> SilverPlan | None:
    """The bronze batches to process (all of them with `full`), or None: nothing to do."""
    if not lake.exists(BRONZE_EVENTS.name):
        log.warning("bronze.events does not exist yet: nothing to do")
        return None
    bronze = lake.read(BRONZE_EVENTS.name)
    batches = {r[0] for r in bronze.select("ingest_batch_id").distinct().collect()}
    new_batches = sorted(batches if full else batches - _processed_batches(lake))
    if not new_batches:
        log.info("silver is up to date (%d bronze batch(es) processed)", len(batches))
        return None
    return SilverPlan(bronze, batches, new_batches, full)


def compute_silver(
    lake: Lake,
    plan: SilverPlan,
    settings: Settings,
    taxonomy: Taxonomy,
    events_spec: TableSpec,
    stats: SilverStats,
    caches: Caches,
) -> SilverFrames:
    s = settings.silver
    log.info(
        "step 1/4 identity: stitching over %d bronze batch(es), %d new",
        len(plan.batches),
        len(plan.new_batches),
    )
    old_map = None if plan.full else lake.read(IDENTITY_MAP.name)
    new_map, resolved, affected = stitch(plan, old_map, settings, stats, caches)
    log.info("step 2/4 conform: %d affected person(s)", stats.affected_persons)
    new_rows = resolved.filter(F.col("ingest_batch_id").isin(plan.new_batches))
    scope = resolved.join(affected, on="person_id", how="left_semi").unionByName(
        new_rows.filter(F.col("person_id").isNull())
    )
    conformed, counts = conform_counted(scope, taxonomy, settings, stats, caches)
    log.info("step 3/4 sessions")
    kept = caches.large(
        conformed.filter(F.col("_status") == "silver").transform(
            lambda d: with_session_id(d, s.session_timeout_minutes, s.max_session_hours)
        )
    )
    return SilverFrames(
        new_map=new_map,
        affected=affected,
        events=kept.select(*events_spec.schema.fieldNames()),
        sessions=sessions_from_events(kept, s.engaged_min_seconds),
        rejects=conformed.filter(F.col("_status") == "reject").select(*REJECTS.schema.fieldNames()),
        counts=counts,
    )


def stitch(
    plan: SilverPlan,
    old_map: DataFrame | None,
    settings: Settings,
    stats: SilverStats,
    caches: Caches,
) -> tuple[DataFrame, DataFrame, DataFrame]:
    """Identity: the new map, bronze rows with their person, and the affected persons
    (those in new batches and the old and new owners of re-attributed ids)."""
    s, key = settings.silver, settings.privacy.pseudonym_key
    links = caches.keep(identity_links(plan.bronze, s.max_ids_per_person))
    link_counts = {
        bool(r["capped"]): int(r["count"]) for r in links.groupBy("capped").count().collect()
    }
    stats.identity_links = link_counts.get(False, 0)
    stats.capped_links = link_counts.get(True, 0)
    if stats.capped_links:
        log.warning(
            "%d anonymous id link(s) beyond silver.max_ids_per_person=%d were not "
            "merged (runaway devices)",
            stats.capped_links,
            s.max_ids_per_person,
        )
    new_map = identity_map(plan.bronze, links, key)
    if old_map is not None:
        # links whose bronze rows have expired (retention) stay: bronze is the recent
        # window, silver.identity_map the long memory
        new_map = new_map.unionByName(
            old_map.join(new_map.select("anonymous_id_hash"), "anonymous_id_hash", "left_anti")
        )
    resolved = with_person(plan.bronze, links, key)
    new_rows = resolved.filter(F.col("ingest_batch_id").isin(plan.new_batches))
    affected = caches.keep(
        new_rows.filter(F.col("person_id").isNotNull())
        .select("person_id")
        .unionByName(changed_persons(old_map, new_map))
        .distinct()
    )
    stats.affected_persons = affected.count()
    return new_map, resolved, affected


def conform_counted(
    scope: DataFrame, taxonomy: Taxonomy, settings: Settings, stats: SilverStats, caches: Caches
) -> tuple[DataFrame, dict[str, int]]:
    """The conformed rows (cached) and the count of each outcome; fills the stats."""
    s = settings.silver
    # The conform projection is very wide (one typed field per taxonomy property):
    # Janino can spend minutes on its generated code and then give up. Interpreted
    # evaluation of this one step is faster end to end; later steps read the cache.
    # (persist() plans the cached query, so the setting must hold from here.)
    with session_conf(scope.sparkSession, {"spark.sql.codegen.wholeStage": "false"}):
        conformed = caches.large(conform(scope, taxonomy, s, s.kept_context_fields))
        # One pass gives both the outcome counts and the reject reasons (small result).
        by_outcome = (
            conformed.groupBy("_status", "reason")
            .agg(
                F.count("*").alias("count"),
                F.count_if(F.size("dq_issues") > 0).alias("flagged"),
            )
            .collect()
        )
    counts: dict[str, int] = {}
    for r in by_outcome:
        counts[r["_status"]] = counts.get(r["_status"], 0) + int(r["count"])
    stats.reasons = {r["reason"]: int(r["count"]) for r in by_outcome if r["_status"] == "reject"}
    stats.bronze_rows = sum(counts.values())
    stats.duplicate_rows = counts.get("duplicate", 0)
    stats.consent_dropped_rows = counts.get("consent_dropped", 0)
    stats.flagged_rows = sum(int(r["flagged"]) for r in by_outcome if r["_status"] == "silver")
    if stats.flagged_rows:
        stats.findings = _findings(conformed)
        log.info(
            "%d silver row(s) kept with data-quality findings (taxonomy policy flag): %s",
            stats.flagged_rows,
            stats.findings,
        )
    log.info(
        "conformed %d bronze row(s): %s; rejects by reason: %s",
        stats.bronze_rows,
        counts,
        stats.reasons,
    )
    return conformed, counts


def _findings(conformed: DataFrame) -> dict[str, int]:
    return {
        r[0]: int(r[1])
        for r in conformed.filter(F.col("_status") == "silver")
        .select(F.explode("dq_issues").alias("f"))
        .groupBy("f")
        .count()
        .collect()
    }


def write_silver(lake: Lake, plan: SilverPlan, frames: SilverFrames, stats: SilverStats) -> None:
    """Full: replace whole tables, so persons no longer in bronze (retention, erasure)
    disappear from silver too. Incremental: replace the affected persons' rows."""
    if plan.full:
        stats.silver_rows = _inserted(lake.overwrite(EVENTS, frames.events))
        stats.sessions = _inserted(lake.overwrite(SESSIONS.name, frames.sessions))
        stats.reject_rows = _inserted(lake.overwrite(REJECTS.name, frames.rejects))
    else:
        _replace_persons(lake, plan, frames, stats)
    lake.overwrite(IDENTITY_MAP.name, frames.new_map)


def _replace_persons(
    lake: Lake, plan: SilverPlan, frames: SilverFrames, stats: SilverStats
) -> None:
    # Bronze keeps a shorter window than silver (retention): a recomputed person only
    # replaces rows from bronze's first day on; their older silver rows are kept.
    horizon = _bronze_horizon(lake, plan.bronze)
    affected = frames.affected
    events, kept_old = _with_history(lake, EVENTS, "event_date", frames.events, affected, horizon)
    sessions, kept_old_sessions = _with_history(
        lake, SESSIONS.name, "session_date", frames.sessions, affected, horizon
    )
    if kept_old:
        log.info("kept %d silver event(s) older than bronze's first day %s", kept_old, horizon)
    rejects = frames.rejects
    stats.silver_rows = (
        _inserted(lake.replace_keys(EVENTS, events, "person_id", affected)) - kept_old
    )
    stats.sessions = (
        _inserted(lake.replace_keys(SESSIONS.name, sessions, "person_id", affected))
        - kept_old_sessions
    )
    stats.reject_rows = _inserted(
        lake.replace_keys(
            REJECTS.name, rejects.filter(F.col("person_id").isNotNull()), "person_id", affected
        )
    )
    orphans = Where.is_null("person_id") & Where.isin("ingest_batch_id", plan.new_batches)
    stats.reject_rows += _inserted(
        lake.overwrite(REJECTS.name, rejects.filter(F.col("person_id").isNull()), where=orphans)
    )


def _with_history(
    lake: Lake,
    table: str,
    day_col: str,
    new: DataFrame,
    affected: DataFrame,
    horizon: date | None,
) -> tuple[DataFrame, int]:
    """The recomputed rows `new` of `table` from `horizon` on, plus the affected persons'
    rows before it (kept: bronze no longer holds them); and how many were kept."""
    if horizon is None:
        return new, 0
    old = (
        lake.read(table)
        .join(affected, "person_id", "left_semi")
        .filter(F.col(day_col) < F.lit(horizon))
    )
    kept = old.count()
    return new.filter(F.col(day_col) >= F.lit(horizon)).unionByName(old), kept


def record_batches(lake: Lake, batches: list[str], run_id: str) -> None:
    now = datetime.now(UTC)
    lake.append(
        SILVER_BATCHES.name,
        lake.spark.createDataFrame(
            [Row(ingest_batch_id=b, run_id=run_id, processed_at=now) for b in batches],
            SILVER_BATCHES.schema,
        ).coalesce(1),
    )


def _bronze_horizon(lake: Lake, bronze) -> date | None:
    """bronze's first event day once retention has deleted from it, else None (bronze
    then holds every person's whole history and nothing older needs keeping)."""
    runs = RETENTION_RUNS.name
    if not lake.exists(runs):
        return None
    hit = (
        lake.read(runs)
        .filter((F.col("table_name") == BRONZE_EVENTS.name) & (F.col("rows_deleted") > 0))
        .limit(1)
        .count()
    )
    if not hit:
        return None
    return bronze.agg(F.min(F.to_date("event_ts"))).first()[0]


def _inserted(result: WriteResult) -> int:
    return result.rows_written if result.rows_inserted is None else result.rows_inserted


def _check_counts(stats: SilverStats, counts: dict[str, int]) -> None:
    """bronze rows = silver + rejects + duplicates + consent-dropped, as written."""
    if stats.silver_rows != counts.get("silver", 0) or stats.reject_rows != counts.get("reject", 0):
        raise LakeError(
            f"silver counts do not add up: written silver={stats.silver_rows} "
            f"rejects={stats.reject_rows}, counted {counts}"
        )
    total = (
        stats.silver_rows + stats.reject_rows + stats.duplicate_rows + stats.consent_dropped_rows
    )
    if total != stats.bronze_rows:
        raise LakeError(f"silver counts do not add up: {total} != bronze {stats.bronze_rows}")
