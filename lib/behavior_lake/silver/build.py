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

from pyspark import StorageLevel
from pyspark.sql import Row
from pyspark.sql import functions as F

from behavior_lake.config import Settings
from behavior_lake.contracts.silver import (
    IDENTITY_MAP,
    REJECTS,
    SESSIONS,
    SILVER_BATCHES,
    silver_events_spec,
)
from behavior_lake.contracts.taxonomy import Taxonomy
from behavior_lake.lake import Lake, LakeError, WriteResult
from behavior_lake.silver.conform import conform
from behavior_lake.silver.identity import (
    changed_persons,
    identity_links,
    identity_map,
    with_person,
)
from behavior_lake.silver.sessions import sessions_from_events, with_session_id
from behavior_lake.spark import persist_large, session_conf

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


def build_silver(
    lake: Lake, settings: Settings, taxonomy: Taxonomy, run_id: str, full: bool = False
) -> SilverStats:
    spark = lake.spark
    s, key = settings.silver, settings.privacy.pseudonym_key
    events_spec = silver_events_spec(taxonomy)
    lake.specs[events_spec.name] = events_spec
    for name in (
        events_spec.name,
        REJECTS.name,
        IDENTITY_MAP.name,
        SESSIONS.name,
        SILVER_BATCHES.name,
    ):
        lake.ensure(name)
    stats = SilverStats()
    if not lake.exists("bronze.events"):
        log.warning("bronze.events does not exist yet: nothing to do")
        return stats
    bronze = lake.read("bronze.events")
    batches = {r[0] for r in bronze.select("ingest_batch_id").distinct().collect()}
    new_batches = sorted(batches if full else batches - _processed_batches(lake))
    stats.new_batches = len(new_batches)
    if not new_batches:
        log.info("silver is up to date (%d bronze batch(es) processed)", len(batches))
        return stats
    t0 = time.monotonic()
    log.info(
        "step 1/4 identity: stitching over %d bronze batch(es), %d new",
        len(batches),
        len(new_batches),
    )
    links = identity_links(bronze, s.max_ids_per_person).persist(StorageLevel.MEMORY_AND_DISK)
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
    new_map = identity_map(bronze, links, key)
    old_map = None if full else lake.read(IDENTITY_MAP.name)
    if old_map is not None:
        # links whose bronze rows have expired (retention) stay: bronze is the recent
        # window, silver.identity_map the long memory
        new_map = new_map.unionByName(
            old_map.join(new_map.select("anonymous_id_hash"), "anonymous_id_hash", "left_anti")
        )
    resolved = with_person(bronze, links, key)
    new_rows = resolved.filter(F.col("ingest_batch_id").isin(new_batches))
    affected = (
        new_rows.filter(F.col("person_id").isNotNull())
        .select("person_id")
        .unionByName(changed_persons(old_map, new_map))
        .distinct()
    ).persist(StorageLevel.MEMORY_AND_DISK)
    stats.affected_persons = affected.count()
    log.info("step 2/4 conform: %d affected person(s)", stats.affected_persons)
    scope = resolved.join(affected, on="person_id", how="left_semi").unionByName(
        new_rows.filter(F.col("person_id").isNull())
    )
    # The conform projection is very wide (one typed field per taxonomy property):
    # Janino can spend minutes on its generated code and then give up. Interpreted
    # evaluation of this one step is faster end to end; later steps read the cache.
    # (persist() plans the cached query, so the setting must hold from here.)
    with session_conf(spark, {"spark.sql.codegen.wholeStage": "false"}):
        conformed = persist_large(conform(scope, taxonomy, s, s.kept_context_fields), settings)
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
        stats.findings = {
            r[0]: int(r[1])
            for r in conformed.filter(F.col("_status") == "silver")
            .select(F.explode("dq_issues").alias("f"))
            .groupBy("f")
            .count()
            .collect()
        }
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

    log.info("step 3/4 sessions")
    kept = (
        conformed.filter(F.col("_status") == "silver")
        .transform(lambda d: with_session_id(d, s.session_timeout_minutes, s.max_session_hours))
        .transform(lambda d: persist_large(d, settings))
    )
    events_out = kept.select(*events_spec.schema.fieldNames())
    sessions_out = sessions_from_events(kept, s.engaged_min_seconds)
    rejects = conformed.filter(F.col("_status") == "reject").select(*REJECTS.schema.fieldNames())

    log.info("step 4/4 write")
    if full:
        # Everything was recomputed: replace whole tables, so persons no longer in
        # bronze (retention, erasure) disappear from silver too.
        stats.silver_rows = _inserted(lake.overwrite(events_spec.name, events_out))
        stats.sessions = _inserted(lake.overwrite(SESSIONS.name, sessions_out))
        stats.reject_rows = _inserted(lake.overwrite(REJECTS.name, rejects))
    else:
        # Bronze keeps a shorter window than silver (retention): a recomputed person only
        # replaces rows from bronze's first day on; their older silver rows are kept.
        kept_old = kept_old_sessions = 0
        horizon = _bronze_horizon(lake, bronze)
        if horizon is not None:
            old_events = (
                lake.read(events_spec.name)
                .join(affected, "person_id", "left_semi")
                .filter(F.col("event_date") < F.lit(horizon))
            )
            kept_old = old_events.count()
            events_out = events_out.filter(F.col("event_date") >= F.lit(horizon)).unionByName(
                old_events
            )
            old_sessions = (
                lake.read(SESSIONS.name)
                .join(affected, "person_id", "left_semi")
                .filter(F.col("session_date") < F.lit(horizon))
            )
            kept_old_sessions = old_sessions.count()
            sessions_out = sessions_out.filter(F.col("session_date") >= F.lit(horizon)).unionByName(
                old_sessions
            )
            if kept_old:
                log.info(
                    "kept %d silver event(s) older than bronze's first day %s", kept_old, horizon
                )
        stats.silver_rows = (
            _inserted(lake.replace_keys(events_spec.name, events_out, "person_id", affected))
            - kept_old
        )
        stats.sessions = (
            _inserted(lake.replace_keys(SESSIONS.name, sessions_out, "person_id", affected))
            - kept_old_sessions
        )
        stats.reject_rows = _inserted(
            lake.replace_keys(
                REJECTS.name, rejects.filter(F.col("person_id").isNotNull()), "person_id", affected
            )
        )
        orphan_where = (
            "`person_id` IS NULL AND `ingest_batch_id` IN ("
            + ", ".join(f"'{b}'" for b in new_batches)
            + ")"
        )
        stats.reject_rows += _inserted(
            lake.overwrite(
                REJECTS.name, rejects.filter(F.col("person_id").isNull()), where=orphan_where
            )
        )
    lake.overwrite(IDENTITY_MAP.name, new_map)
    _check_counts(stats, counts)
    now = datetime.now(UTC)
    lake.append(
        SILVER_BATCHES.name,
        spark.createDataFrame(
            [Row(ingest_batch_id=b, run_id=run_id, processed_at=now) for b in new_batches],
            SILVER_BATCHES.schema,
        ).coalesce(1),
    )
    for df in (kept, conformed, affected, links):
        df.unpersist()
    log.info(
        "silver done in %.1fs: persons=%d bronze=%d silver=%d rejects=%d duplicates=%d "
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


def _bronze_horizon(lake: Lake, bronze) -> date | None:
    """bronze's first event day once retention has deleted from it, else None (bronze
    then holds every person's whole history and nothing older needs keeping)."""
    runs = "ops.retention_runs"
    if not lake.exists(runs):
        return None
    hit = (
        lake.read(runs)
        .filter((F.col("table_name") == "bronze.events") & (F.col("rows_deleted") > 0))
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
