"""Enforce retention: delete rows older than each table's period, then vacuum.

    python jobs/enforce_retention.py [--env local] [--dry-run] [--table NAME ...]
                                     [--today DATE] [--force] [--conf key=value ...]

Periods come from conf/base/retention.yml (retention.tables.<table>: days, column).
Deletes are Delta deletes (metadata-only when the column partitions the table); the
vacuum (retention.vacuum_retention_hours) then removes the files from disk. Per table,
rows deleted, files removed and bytes freed go to ops.retention_runs and the audit log.
Subject access exports older than governance.export_keep_days are deleted (files and
S3 objects; ops.subject_exports marks them).
--dry-run prints what would go and changes nothing. Rerunning is a no-op.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from behavior_lake.contracts.codes import ExportDeletion
from behavior_lake.contracts.governance import RETENTION_RUNS, SUBJECT_EXPORTS
from behavior_lake.contracts.silver import EVENTS
from behavior_lake.governance.audit import AuditEvent, audit
from behavior_lake.governance.export_ledger import delete_exports
from behavior_lake.governance.retention import enforce_retention
from behavior_lake.runtime import JobContext, JobDef, iso_date, out

JOB = "enforce_retention"


def run(ctx: JobContext, args) -> None:
    res = enforce_retention(
        ctx.lake,
        ctx.settings,
        ctx.run_id,
        dry_run=args.dry_run,
        today=args.today,
        tables=args.table or None,
        force=args.force,
    )
    verb = "would delete" if args.dry_run else "deleted"
    # subject exports older than governance.export_keep_days, by the wall clock
    now = datetime.now(UTC).replace(tzinfo=None)
    expired = delete_exports(
        ctx.lake, ctx.settings, ExportDeletion.EXPIRED, expired_before=now, dry_run=args.dry_run
    )
    if expired:
        print(f"{JOB}: {SUBJECT_EXPORTS.name}: {verb} {expired} expired subject export(s)")
    for t in res:
        print(
            f"{JOB}: {t.table}: {verb} {t.rows_deleted} row(s) with {t.column} < {t.cutoff} "
            f"({t.days} days)"
            + ("" if args.dry_run else f"; vacuum removed {t.files_removed} file(s)")
        )
    if not args.dry_run:
        events = [
            AuditEvent("retention_delete", t.table, t.rows_deleted, f"older than {t.cutoff}")
            for t in res
            if t.rows_deleted
        ]
        if expired:
            events.append(AuditEvent("export_expired", SUBJECT_EXPORTS.name, expired, "expired"))
        audit(ctx.lake, ctx.settings.governance.actor, ctx.run_id, events)
    ctx.record.rows_out = sum(t.rows_deleted for t in res)
    ctx.count(
        tables=len(res),
        rows_deleted=ctx.record.rows_out,
        files_removed=sum(t.files_removed for t in res),
        subject_exports_expired=expired,
    )


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would go; change nothing"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="delete even when a table would lose more than retention.max_delete_share",
    )
    parser.add_argument("--table", action="append", default=[], help="only this table (repeatable)")
    parser.add_argument(
        "--today", type=iso_date, help="reference date (default: retention.reference)"
    )


JOB_DEF = JobDef(
    name=JOB,
    description=__doc__.strip().splitlines()[0],
    inputs=(EVENTS,),
    outputs=(out(RETENTION_RUNS.name, "append"), out(SUBJECT_EXPORTS.name, "merge")),
    body=run,
    arguments=_arguments,
    settings_outputs=lambda s: tuple(out(t, "delete") for t in s.retention.tables),
)

cli = JOB_DEF.cli  # the entry point: jobs/<name>.py, spark-submit, Databricks
