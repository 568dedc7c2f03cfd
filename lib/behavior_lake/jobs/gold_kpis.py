"""Build the gold reporting tables: daily_kpis, retention_cohorts, funnels, paths.

    python jobs/gold_kpis.py [--env local] [--conf key=value ...]

All four are recomputed whole from silver on every run (their size depends on days,
funnel steps and distinct paths, not on events), so reruns are idempotent and late
silver corrections are picked up. Funnels and cohort triggers come from conf gold.*.
"""

from __future__ import annotations

from behavior_lake.contracts.gold import DAILY_KPIS, FUNNELS, PATHS, RETENTION_COHORTS
from behavior_lake.contracts.silver import EVENTS, SESSIONS
from behavior_lake.contracts.taxonomy import load_taxonomy
from behavior_lake.gold.build import build_reports
from behavior_lake.runtime import JobContext, JobDef, out

JOB = "gold_kpis"


def run(ctx: JobContext, args) -> None:
    taxonomy = load_taxonomy(ctx.settings.conf_dir)
    st = build_reports(ctx.lake, ctx.settings, taxonomy)
    ctx.record.rows_out = sum(st.rows.values())
    ctx.count(**{name.split(".")[1] + "_rows": n for name, n in st.rows.items()})


JOB_DEF = JobDef(
    name=JOB,
    description=__doc__.strip().splitlines()[0],
    inputs=(EVENTS, SESSIONS.name),
    outputs=(
        out(DAILY_KPIS.name, "replace"),
        out(RETENTION_COHORTS.name, "replace"),
        out(FUNNELS.name, "replace"),
        out(PATHS.name, "replace"),
    ),
    body=run,
)

cli = JOB_DEF.cli  # the entry point: jobs/<name>.py, spark-submit, Databricks
