"""Enforce retention: delete rows older than each table's period, then vacuum.

    python jobs/enforce_retention.py [--env local] [--dry-run] [--table NAME ...]
                                     [--today DATE] [--force] [--conf key=value ...]

Periods come from conf/base/retention.yml (retention.tables.<table>: days, column).
Deletes are Delta deletes (metadata-only when the column partitions the table); the
vacuum (retention.vacuum_retention_hours) then removes the files from disk. Per table,
rows deleted, files removed and bytes freed go to ops.retention_runs and the audit log.
--dry-run prints what would go and changes nothing. Rerunning is a no-op.
"""

from __future__ import annotations

import argparse

from behavior_lake.contracts.governance import RETENTION_RUNS
from behavior_lake.contracts.silver import EVENTS
from behavior_lake.governance.audit import AuditEvent, audit
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
    for t in res:
        print(
            f"{JOB}: {t.table}: {verb} {t.rows_deleted} row(s) with {t.column} < {t.cutoff} "
            f"({t.days} days)"
            + ("" if args.dry_run else f"; vacuum removed {t.files_removed} file(s)")
        )
    if not args.dry_run:
        audit(
            ctx.lake,
            ctx.settings.governance.actor,
            ctx.run_id,
            [
                AuditEvent("retention_delete", t.table, t.rows_deleted, f"older than {t.cutoff}")
                for t in res
                if t.rows_deleted
            ],
        )
    ctx.record.rows_out = sum(t.rows_deleted for t in res)
    ctx.count(
        tables=len(res),
        rows_deleted=ctx.record.rows_out,
        files_removed=sum(t.files_removed for t in res),
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
    outputs=(out(RETENTION_RUNS.name, "append"),),
    body=run,
    arguments=_arguments,
    settings_outputs=lambda s: tuple(out(t, "delete") for t in s.retention.tables),
)

cli = JOB_DEF.cli  # the entry point: jobs/<name>.py, spark-submit, Databricks
