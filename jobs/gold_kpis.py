"""Build gold.daily_kpis (one row per day and platform) from silver.

    python jobs/gold_kpis.py [--env local] [--conf key=value ...]

Recomputed whole on every run (one row per day and platform: small), so reruns are
idempotent and late silver corrections are picked up.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from behavior_lake.contracts.gold import DAILY_KPIS
from behavior_lake.gold.kpis import daily_kpis
from behavior_lake.runtime import JobContext, base_parser, main

JOB = "gold_kpis"


def run(ctx: JobContext, args) -> None:
    lake = ctx.lake
    kpis = daily_kpis(lake.read("silver.events"), lake.read("silver.sessions"))
    res = lake.overwrite(DAILY_KPIS.name, kpis.select(*DAILY_KPIS.schema.fieldNames()))
    ctx.record.rows_out = res.rows_written
    ctx.count(kpi_rows=res.rows_written)


def cli(argv: list[str] | None = None) -> int:
    parser = base_parser(JOB, __doc__.strip().splitlines()[0])
    return main(JOB, argv, parser, run)


if __name__ == "__main__":
    sys.exit(cli())
