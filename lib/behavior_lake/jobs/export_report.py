"""External report: behaviour by segment and country, k-anonymous.

    python jobs/export_report.py [--out reports] [--as-of DATE] [--k K]
                                 [--env local] [--conf key=value ...]

Aggregates the latest (or given) snapshot of gold.user_segments x gold.user_features by
segment and country (from the locale silver keeps) and suppresses every group with
fewer than k distinct persons (governance.k_anonymity, default 10). Writes a CSV.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

from behavior_lake.contracts.gold import USER_FEATURES
from behavior_lake.contracts.ml import USER_SEGMENTS
from behavior_lake.contracts.silver import EVENTS
from behavior_lake.governance.audit import AuditEvent, audit
from behavior_lake.governance.export import k_anonymous, segment_country_report
from behavior_lake.runtime import JobContext, JobDef, iso_date

JOB = "export_report"


def run(ctx: JobContext, args) -> None:
    k = args.k or ctx.settings.governance.k_anonymity
    report = segment_country_report(ctx.lake, args.as_of)
    kept, suppressed = k_anonymous(report, k)
    rows = kept.orderBy("segment_name", "country").collect()  # aggregates: small
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    day = rows[0]["as_of_date"] if rows else "empty"
    path = out / f"segments_by_country_{day}.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(kept.columns)
        for r in rows:
            w.writerow([r[c] for c in kept.columns])
    print(
        f"{JOB}: {len(rows)} group(s) written to {path}; {suppressed} group(s) below k={k} suppressed"
    )
    audit(
        ctx.lake,
        ctx.settings.governance.actor,
        ctx.run_id,
        [
            AuditEvent(
                "external_report", None, len(rows), f"k={k}, suppressed {suppressed} group(s)"
            )
        ],
    )
    ctx.record.rows_out = len(rows)
    ctx.count(groups=len(rows), suppressed=suppressed)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="reports", help="output folder")
    parser.add_argument("--as-of", type=iso_date, help="snapshot date (default: latest)")
    parser.add_argument(
        "--k", type=int, help="minimum persons per group (default: governance.k_anonymity)"
    )


JOB_DEF = JobDef(
    name=JOB,
    description=__doc__.strip().splitlines()[0],
    inputs=(USER_SEGMENTS.name, USER_FEATURES, EVENTS),
    outputs=(),
    body=run,
    arguments=_arguments,
)

cli = JOB_DEF.cli  # the entry point: jobs/<name>.py, spark-submit, Databricks
