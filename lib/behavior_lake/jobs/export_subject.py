"""Subject access export: every row about a user across layers, as a JSON bundle.

    python jobs/export_subject.py --user-id X [--out DIR | --out s3://bucket/prefix]
                                  [--env local] [--conf key=value ...]

Writes a zip with one JSON file per table that holds rows about the subject (bronze by
raw id, silver/gold/ops by pseudonym, identity-linked anonymous ids included) and a
manifest.json (tables, row counts, generated_at). With an s3:// target it uploads with
boto3 (governance.export_endpoint_url for any S3-compatible store) and prints a presigned
URL valid for governance.presign_seconds. The export is recorded in the audit log and in
ops.subject_exports: erasing the subject deletes it, and enforce_retention deletes it
after governance.export_keep_days.
"""

from __future__ import annotations

import argparse

from behavior_lake.catalog import subject_tables
from behavior_lake.contracts.governance import SUBJECT_EXPORTS
from behavior_lake.governance.audit import AuditEvent, audit
from behavior_lake.governance.export import export_subject
from behavior_lake.runtime import JobContext, JobDef, out

JOB = "export_subject"


def run(ctx: JobContext, args) -> None:
    res = export_subject(ctx.lake, ctx.settings, args.user_id, args.out)
    m = res.manifest
    print(f"{JOB}: {m['total_rows']} row(s) from {len(m['tables'])} table(s) -> {res.location}")
    if res.presigned_url:
        print(f"{JOB}: presigned URL: {res.presigned_url}")
    audit(
        ctx.lake,
        ctx.settings.governance.actor,
        ctx.run_id,
        [AuditEvent("subject_export", None, m["total_rows"], f"subject {m['subject'][:16]}")],
    )
    ctx.record.rows_out = m["total_rows"]


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user-id", required=True, help="the subject's user id")
    parser.add_argument("--out", default="exports", help="folder or s3://bucket/prefix")


JOB_DEF = JobDef(
    name=JOB,
    description=__doc__.strip().splitlines()[0],
    inputs=(*subject_tables(),),
    outputs=(out(SUBJECT_EXPORTS.name, "merge"),),
    body=run,
    arguments=_arguments,
)

cli = JOB_DEF.cli  # the entry point: jobs/<name>.py, spark-submit, Databricks
