"""Retention: delete rows older than each table's period, then vacuum the files away."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from pyspark.sql import functions as F
from pyspark.sql import types as T

from behavior_lake.config import Settings
from behavior_lake.contracts.governance import RETENTION_RUNS
from behavior_lake.contracts.silver import EVENTS
from behavior_lake.lake import Lake, Where
from behavior_lake.lake.base import spec_rows
from behavior_lake.lake.files import hadoop_files, is_object_store

log = logging.getLogger(__name__)
DATE_TYPES = (T.DateType, T.TimestampType, T.TimestampNTZType)


@dataclass
class TableRetention:
    table: str
    column: str
    days: int
    cutoff: date
    rows_deleted: int = 0
    metadata_only: bool | None = None
    files_removed: int = 0
    bytes_freed: int | None = None


class RetentionGuardError(ValueError):
    """A run would delete more than retention.max_delete_share of a table."""


def reference_date(
    lake: Lake, settings: Settings, today: date | None = None, wall: date | None = None
) -> date:
    """The date retention periods count back from. An explicit `today` (--today) always
    wins, and is refused when later than tomorrow. With `reference: data` it is the day
    after the last silver event, but never later than tomorrow by the wall clock: event
    times come from clients, and a forged one must not make current data look old."""
    wall = wall or datetime.now(UTC).date()
    latest = wall + timedelta(days=1)
    if today is not None:
        if today > latest:
            raise ValueError(
                f"--today {today}: later than tomorrow ({latest}); retention never counts "
                "from a future date"
            )
        return today
    if settings.retention.reference == "data":
        if lake.exists(EVENTS):
            last = lake.read(EVENTS).agg(F.max("event_date")).first()[0]
            if last is not None:
                if last + timedelta(days=1) > latest:
                    log.warning(
                        "retention: silver.events has events up to %s, after today; "
                        "counting from %s instead",
                        last,
                        latest,
                    )
                return min(last + timedelta(days=1), latest)
        log.warning("retention.reference=data but silver.events is empty: using today")
    return wall


def guard_shares(lake: Lake, cutoffs: dict[str, tuple[str, date]], max_share: float) -> list[str]:
    """Tables where rows older than their cutoff exceed `max_share` of the table: one
    aggregate per table, before anything is deleted."""
    over = []
    for table, (column, cutoff) in cutoffs.items():
        if not lake.exists(table):
            continue
        total, old = (
            lake.read(table).agg(F.count("*"), F.count_if(F.col(column) < F.lit(cutoff))).first()
        )
        if total and old / total > max_share:
            over.append(f"{table} ({old} of {total} rows, {old / total:.0%}, before {cutoff})")
    return over


def check_rules(lake: Lake, settings: Settings) -> None:
    for table, rule in settings.retention.tables.items():
        if rule.days < 1:
            raise ValueError(f"retention.tables.{table}.days: expected >= 1, got {rule.days}")
        if not lake.exists(table):
            continue
        fields = {f.name: f.dataType for f in lake.schema(table).fields}
        if rule.column not in fields:
            raise ValueError(
                f"retention.tables.{table}.column: {table} has no column {rule.column!r}"
            )
        if not isinstance(fields[rule.column], DATE_TYPES):
            raise ValueError(
                f"retention.tables.{table}.column: {rule.column} is "
                f"{fields[rule.column].simpleString()}, expected a date or timestamp"
            )


def local_data_files(root: str) -> dict[str, int]:
    """Data files (path -> bytes) under a table on a local disk; {} elsewhere."""
    path = root.removeprefix("file://")
    if "://" in path or not os.path.isdir(path):
        return {}
    out = {}
    for d, dirs, files in os.walk(path):
        dirs[:] = [x for x in dirs if x != "_delta_log"]
        for f in files:
            if f.endswith(".parquet"):
                p = os.path.join(d, f)
                out[p] = os.path.getsize(p)
    return out


def data_files(lake: Lake, table: str) -> dict[str, int]:
    """A table's data files (path -> bytes) on a local disk or on S3; {} elsewhere."""
    root = lake.path(table)
    if is_object_store(root):
        return hadoop_files(lake.spark, root)
    return local_data_files(root)


def vacuum_measured(lake: Lake, table: str, hours: float) -> tuple[int, int | None]:
    """Vacuum; returns (files removed, bytes freed — None where files cannot be listed)."""
    before = data_files(lake, table)
    removed = lake.vacuum(table, hours)
    if not before:
        return len(removed), None
    after = data_files(lake, table)
    freed = sum(size for p, size in before.items() if p not in after)
    return len(removed), freed


def enforce_retention(
    lake: Lake,
    settings: Settings,
    run_id: str,
    *,
    dry_run: bool = False,
    today: date | None = None,
    tables: list[str] | None = None,
    force: bool = False,
) -> list[TableRetention]:
    """Plan (reference date, tables, the share guard) -> delete and vacuum per table ->
    record the run in ops.retention_runs."""
    check_rules(lake, settings)
    ref = reference_date(lake, settings, today)
    rules = settings.retention.tables
    unknown = sorted(set(tables or ()) - set(rules))
    if unknown:
        raise ValueError(f"--table {unknown}: no retention rule; expected one of {sorted(rules)}")
    names = [t for t in rules if not tables or t in tables]
    log.info("retention: reference date %s, %d table(s)", ref, len(names))
    share = settings.retention.max_delete_share
    if not dry_run and not force and share < 1:
        over = guard_shares(
            lake, {t: (rules[t].column, ref - timedelta(days=rules[t].days)) for t in names}, share
        )
        if over:
            raise RetentionGuardError(
                f"retention would delete more than retention.max_delete_share={share:g} of: "
                + "; ".join(over)
                + ". Nothing was deleted. Check the reference date, then rerun with --force."
            )
    out = []
    for i, table in enumerate(names, start=1):
        rule = rules[table]
        tr = TableRetention(table, rule.column, rule.days, ref - timedelta(days=rule.days))
        step = f"[{i}/{len(names)}] {table}"
        if not lake.exists(table):
            log.info("%s: table does not exist yet", step)
            continue
        _apply(lake, settings, tr, dry_run, step)
        out.append(tr)
    rows = [
        (
            run_id, t.table, t.column, t.days, t.cutoff, t.rows_deleted, t.metadata_only,
            t.files_removed, t.bytes_freed, dry_run,
        )
        for t in out
    ]  # fmt: skip
    if rows and not dry_run:
        lake.append(RETENTION_RUNS.name, spec_rows(lake.spark, RETENTION_RUNS, rows, "run_at"))
    return out


def _apply(lake: Lake, settings: Settings, tr: TableRetention, dry_run: bool, step: str) -> None:
    """Delete one table's expired rows (or count them: dry run), purge, vacuum."""
    # on a partition column, whole files are dropped without being read
    where = Where.lt(tr.column, tr.cutoff)
    if dry_run:
        tr.rows_deleted = lake.read(tr.table).filter(where.column()).count()
        log.info(
            "%s: DRY RUN: %d row(s) with %s < %s would be deleted",
            step, tr.rows_deleted, tr.column, tr.cutoff,
        )  # fmt: skip
        return
    res = lake.delete(tr.table, where)
    tr.rows_deleted = res.rows_deleted or 0
    tr.metadata_only = res.extra.get("metadata_only") if res.extra else None
    if tr.rows_deleted:
        lake.purge(tr.table)  # rows only marked deleted would outlive the vacuum
    tr.files_removed, tr.bytes_freed = vacuum_measured(
        lake, tr.table, settings.retention.vacuum_retention_hours
    )
    log.info(
        "%s: deleted %d row(s) before %s%s; vacuum removed %d file(s) (%s bytes)",
        step, tr.rows_deleted, tr.cutoff, " (metadata only)" if tr.metadata_only else "",
        tr.files_removed, tr.bytes_freed,
    )  # fmt: skip
