"""Run the pipeline DAG (conf pipeline.tasks) locally in one Spark session.

    python jobs/run_pipeline.py [--env local] [--from TASK | --only TASK ...]
                                [--generate] [--conf key=value ...]

Tasks run in dependency order with their retries; each logs a progress line, a failed
task skips its dependents but not unrelated tasks, SLA breaches (duration, output
staleness) go to ops.sla_breaches, and a summary table ends the run. Tasks are
idempotent, so rerunning (or --from the failed task) resumes safely. Exit code 1 when
any task failed or was skipped.

--generate first writes the demo landing set (jobs/generate_events.py, generator.*
settings) in the same session: `make run` uses it to start Spark once, not twice. It is
not a DAG task; production landings come from the event collectors.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import UTC, datetime

from behavior_lake import logs
from behavior_lake.catalog import open_lake
from behavior_lake.config import ConfigError, load_settings
from behavior_lake.jobs import registry
from behavior_lake.pipeline import (
    check_lineage,
    job_runner,
    record_breaches,
    run_tasks,
    select,
    sla_breaches,
    summary,
)
from behavior_lake.spark import JavaMissingError, build_session

JOB = "run_pipeline"


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=JOB, description=__doc__.strip().splitlines()[0])
    parser.add_argument("--env", default="local", help="config environment (default: local)")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--from", dest="start", metavar="TASK", help="run TASK and downstream")
    group.add_argument(
        "--only", action="append", default=[], metavar="TASK", help="run only TASK (repeatable)"
    )
    parser.add_argument(
        "--generate",
        action="store_true",
        help="write the demo landing set first, in the same Spark session (make run)",
    )
    return parser


def cli(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    run_id = f"pipeline-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    try:
        settings = load_settings(args.env, args.conf)
        jobs = registry()
        check_lineage(settings.pipeline.tasks, jobs, settings)
        names = select(settings.pipeline.tasks, jobs, args.start, args.only)
    except ConfigError as exc:
        print(f"{JOB}: config error: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.logging.level, settings.logging.format)
    logs.set_context(run_id=run_id, job=JOB)
    try:
        spark = build_session(settings)
    except JavaMissingError as exc:
        print(f"{JOB}: {exc}", file=sys.stderr)
        return 3
    t0 = time.monotonic()
    base = ["--env", args.env]
    for c in args.conf:
        base += ["--conf", c]
    if args.generate:
        rc, _ = jobs["generate_events"].run(base)
        logs.set_context(run_id=run_id, job=JOB)
        if rc != 0:
            print(f"{JOB}: generate_events failed (exit {rc}): no task run", file=sys.stderr)
            return 1
    print(f"{JOB}: {len(names)} task(s): {' -> '.join(names)}", flush=True)
    results = run_tasks(settings, names, base, job_runner(jobs))
    logs.set_context(run_id=run_id, job=JOB, task="-")
    lake = open_lake(spark, settings)
    breaches = sla_breaches(lake, settings, results, run_id)
    record_breaches(lake, breaches)
    for b in breaches:
        print(f"{JOB}: SLA breach: {b[1]} {b[2]}: {b[5]}", file=sys.stderr)
    print(f"\n{summary(results)}\n\n{JOB}: {run_id} finished in {time.monotonic() - t0:.0f}s")
    return 0 if all(r.status == "success" for r in results) else 1


if __name__ == "__main__":
    sys.exit(cli())
