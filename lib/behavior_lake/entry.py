"""Console entry points of the wheel (`[project.scripts]`), one per job.

Standard library only until a job runs: `--help` works where pyspark is not installed
(help texts generated from the jobs' parsers into entry_help.json by `make docs`), and a
missing Spark says what to install instead of a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from importlib import resources

SCRIPT_PREFIX = "behavior-lake-"


def help_texts() -> dict[str, str]:
    return json.loads(resources.files("behavior_lake").joinpath("entry_help.json").read_text())


def run(job: str, argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        import pyspark  # noqa: F401
    except ImportError:
        if {"-h", "--help"} & set(args):
            print(help_texts()[job])
            return 0
        print(
            f"{job}: pyspark is not installed. A Spark runtime (Databricks, a cluster's "
            "Python) provides it; elsewhere: pip install 'behavior-lake[local]'",
            file=sys.stderr,
        )
        return 3
    if job == "run_pipeline":
        from behavior_lake.jobs.run_pipeline import cli

        return cli(args)
    from behavior_lake.jobs import registry

    return registry()[job].cli(args)


def _entry(job: str) -> Callable[[], int]:
    def main() -> int:
        return run(job)

    main.__name__ = job
    return main


generate_events = _entry("generate_events")
bronze_ingest = _entry("bronze_ingest")
silver_events = _entry("silver_events")
gold_features = _entry("gold_features")
gold_kpis = _entry("gold_kpis")
gold_experiments = _entry("gold_experiments")
train_segments = _entry("train_segments")
assign_segments = _entry("assign_segments")
train_churn = _entry("train_churn")
score_churn = _entry("score_churn")
erase_subjects = _entry("erase_subjects")
enforce_retention = _entry("enforce_retention")
export_report = _entry("export_report")
export_subject = _entry("export_subject")
build_report = _entry("build_report")
run_pipeline = _entry("run_pipeline")
activation_stream = _entry("activation_stream")
deliver_actions = _entry("deliver_actions")
sync_profiles = _entry("sync_profiles")


def cli(argv: list[str] | None = None) -> int:
    """`behavior-lake serve [--env local] [--conf key=value ...] [--host H] [--port P]`:
    the decision API (docs/activation.md)."""
    import argparse

    parser = argparse.ArgumentParser(prog="behavior-lake", description="behavior-lake services")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the decision API (FastAPI + uvicorn)")
    serve.add_argument("--env", default="local")
    serve.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE")
    serve.add_argument("--host", help="default: activation.api.host (127.0.0.1)")
    serve.add_argument("--port", type=int, help="default: activation.api.port")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        from behavior_lake.activation.api import serve as run_api
    except ImportError as exc:
        print(f"behavior-lake serve: {exc}; pip install 'behavior-lake[local]'", file=sys.stderr)
        return 3
    return run_api(args.env, args.conf, args.host, args.port)
