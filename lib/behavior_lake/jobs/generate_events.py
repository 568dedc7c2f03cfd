"""Generate a realistic landing set (demo, tests, benchmarks); truth goes to truth/.

python jobs/generate_events.py [--env local] [--users N] [--days D] [--seed S]
                               [--no-clean] [--conf generator.key=value ...]
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from behavior_lake.generator.generate import generate
from behavior_lake.runtime import LANDING, JobContext, JobDef, out

JOB = "generate_events"


def run(ctx: JobContext, args) -> None:
    g = ctx.settings.generator
    changes = {
        k: v
        for k, v in (("users", args.users), ("days", args.days), ("seed", args.seed))
        if v is not None
    }
    g = replace(g, **changes)
    res = generate(
        ctx.spark,
        g,
        ctx.settings.landing.root,
        ctx.settings.landing.truth_root,
        clean=not args.no_clean,
    )
    ctx.record.rows_out = res.lines
    ctx.count(persons=res.persons, lines=res.lines, files=res.files)
    print(
        f"generated {res.lines} lines in {res.files} files for {res.persons} persons "
        f"under {ctx.settings.landing.root}/ (truth in {ctx.settings.landing.truth_root}/)"
    )


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=int, help="persons to simulate (generator.users)")
    parser.add_argument("--days", type=int, help="days of activity (generator.days)")
    parser.add_argument("--seed", type=int, help="random seed (generator.seed)")
    parser.add_argument(
        "--no-clean",
        action="store_true",
        help="keep existing landing/truth files (default: start afresh)",
    )


JOB_DEF = JobDef(
    name=JOB,
    description=__doc__.strip().splitlines()[0],
    inputs=(),
    outputs=(out(LANDING, "replace", "append"),),
    body=run,
    arguments=_arguments,
)

cli = JOB_DEF.cli  # the entry point: jobs/<name>.py, spark-submit, Databricks
