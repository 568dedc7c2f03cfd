"""Build the gold reporting tables: daily_kpis, retention_cohorts, funnels, paths.

    python jobs/gold_kpis.py [--env local] [--conf key=value ...]

All four are recomputed whole from silver on every run (their size depends on days,
funnel steps and distinct paths, not on events), so reruns are idempotent and late
silver corrections are picked up. Funnels and cohort triggers come from conf gold.*.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from behavior_lake.contracts.taxonomy import load_taxonomy
from behavior_lake.gold.build import build_reports
from behavior_lake.runtime import JobContext, base_parser, main

JOB = "gold_kpis"


def run(ctx: JobContext, args) -> None:
    taxonomy = load_taxonomy(ctx.settings.conf_dir)
    st = build_reports(ctx.lake, ctx.settings, taxonomy)
    ctx.record.rows_out = sum(st.rows.values())
    ctx.count(**{name.split(".")[1] + "_rows": n for name, n in st.rows.items()})


def cli(argv: list[str] | None = None) -> int:
    parser = base_parser(JOB, __doc__.strip().splitlines()[0])
    return main(JOB, argv, parser, run)


if __name__ == "__main__":
    sys.exit(cli())
