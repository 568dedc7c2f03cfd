"""Right to erasure: file requests for the subjects given, then process every pending one.

    python jobs/erase_subjects.py [--env local] [--user-id X ...] [--anonymous-id Y ...]
                                  [--conf key=value ...]

Removes every row about each pending subject from every layer (bronze by raw id, silver,
gold and ops by person_id / anonymous id hash, identity map, features, segments, scores,
quarantines), vacuums the touched tables with zero retention so the files that held the
rows leave the disk, verifies by scanning what is left, adds the hashed ids to the
suppression list (bronze drops their later events) and marks each request `done` with
counts, or `failed` with the reason (exit code 1). The subject's access exports
(ops.subject_exports: files and S3 objects) are deleted. Cached profiles of erased subjects are
deleted from the activation Redis cache when it is reachable.
"""

from __future__ import annotations

import argparse

from behavior_lake.activation.cache import forget_erased
from behavior_lake.catalog import subject_tables
from behavior_lake.contracts.codes import ExportDeletion
from behavior_lake.contracts.governance import ERASURE_REQUESTS, SUBJECT_EXPORTS, SUPPRESSION
from behavior_lake.contracts.silver import IDENTITY_MAP
from behavior_lake.governance.audit import AuditEvent, audit
from behavior_lake.governance.erasure import file_requests, process_pending
from behavior_lake.governance.export_ledger import delete_exports
from behavior_lake.runtime import ANY_TABLE, JobContext, JobDef, out

JOB = "erase_subjects"


def run(ctx: JobContext, args) -> None:
    filed = file_requests(ctx.lake, ctx.settings, args.user_id, args.anonymous_id)
    results = process_pending(ctx.lake, ctx.settings, ctx.run_id)
    for r in results:
        print(
            f"{JOB}: {r.request_id}: {r.status}, {r.rows_deleted} row(s) deleted"
            + (f" ({r.detail})" if r.detail else "")
        )
    ctx.record.rows_out = sum(r.rows_deleted for r in results[:1])
    forgotten = forget_erased(ctx.lake, ctx.settings.activation.redis) if results else 0
    # every erased subject's access exports (also those a failed earlier run left)
    exports = delete_exports(ctx.lake, ctx.settings, ExportDeletion.ERASURE)
    if exports:
        print(f"{JOB}: {exports} subject export(s) of erased subjects deleted")
        event = AuditEvent("erase_exports", SUBJECT_EXPORTS.name, exports, "erasure")
        audit(ctx.lake, ctx.settings.governance.actor, ctx.run_id, [event])
    ctx.count(
        filed=len(filed),
        processed=len(results),
        failed=sum(r.status == "failed" for r in results),
        redis_profiles_deleted=-1 if forgotten is None else forgotten,
        subject_exports_deleted=exports,
    )
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise ValueError(
            f"{len(failed)} erasure request(s) failed verification: {failed[0].detail}"
        )


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--user-id", action="append", default=[], help="subject user id (repeatable)"
    )
    parser.add_argument(
        "--anonymous-id", action="append", default=[], help="subject anonymous id (repeatable)"
    )


JOB_DEF = JobDef(
    name=JOB,
    description=__doc__.strip().splitlines()[0],
    inputs=(ERASURE_REQUESTS.name, IDENTITY_MAP.name),
    outputs=(
        out(ERASURE_REQUESTS.name, "append", "merge"),
        out(SUPPRESSION.name, "merge"),
        out(SUBJECT_EXPORTS.name, "merge"),  # the subject's exports are deleted
        *(out(t, "delete") for t in subject_tables()),
        # tables found under the lake root that no spec declares: erasure reaches them too
        out(ANY_TABLE, "delete"),
    ),
    body=run,
    arguments=_arguments,
)

cli = JOB_DEF.cli  # the entry point: jobs/<name>.py, spark-submit, Databricks
