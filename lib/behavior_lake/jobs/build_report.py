"""Write the insights report: a static site from the gold and ops tables.

    python jobs/build_report.py [--output DIR] [--env local] [--conf key=value ...]

KPI trends (incomplete days shaded), cohort retention, funnels and top paths, segments
and their drift, churn risk by decile and segment with capacity and value at risk, and a
data-quality page: inline SVG charts, each with a one-line takeaway computed from the
data and the query and table versions behind it. Opens from disk: no server, no script.
Panels whose tables do not exist yet say so instead of failing the job.
"""

from __future__ import annotations

import argparse

from behavior_lake.insights.panels import datasets
from behavior_lake.insights.site import build_site
from behavior_lake.runtime import JobContext, JobDef

JOB = "build_report"


def run(ctx: JobContext, args) -> None:
    target = args.output or ctx.settings.reports.insights_dir
    summary = build_site(ctx.lake, target, ctx.settings.reports.max_table_rows)
    print(
        f"{JOB}: {len(summary['pages'])} pages, {summary['charts']} charts in {summary['out']} "
        f"(open {summary['out']}/index.html)"
    )
    ctx.record.rows_out = summary["charts"]
    ctx.count(pages=len(summary["pages"]), charts=summary["charts"],
              without_data=len(summary["without_data"]))  # fmt: skip


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output", help="folder for index.html and the pages (default: reports.insights_dir)"
    )


def _inputs() -> tuple[str, ...]:
    return tuple(dict.fromkeys(t for ds in datasets() for t in ds.tables))


JOB_DEF = JobDef(
    name=JOB,
    description=__doc__.strip().splitlines()[0],
    inputs=_inputs(),
    outputs=(),
    body=run,
    arguments=_arguments,
)

cli = JOB_DEF.cli  # the entry point: jobs/<name>.py, spark-submit, Databricks
