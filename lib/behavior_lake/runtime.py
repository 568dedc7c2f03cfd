"""What every job shares: arguments, settings, session, lake, and its ops.job_runs row."""

from __future__ import annotations

import argparse
import logging
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from pyspark.sql import SparkSession

from behavior_lake import logs
from behavior_lake.config import ConfigError, Settings, load_settings
from behavior_lake.governance.audit import AuditEvent, audit
from behavior_lake.lake import Lake, LakeError, open_lake
from behavior_lake.ops import lease
from behavior_lake.ops.job_runs import RunRecord, record_run
from behavior_lake.privacy_keys import uses_development_keys
from behavior_lake.spark import JavaMissingError, build_session

log = logging.getLogger(__name__)
# The record of the last job run in this process (the pipeline runner reads its counts).
LAST_RUN: RunRecord | None = None


def iso_date(value: str) -> date:
    """argparse type for YYYY-MM-DD dates."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {value!r}") from None


def base_parser(job: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=job, description=description)
    parser.add_argument("--env", default="local", help="config environment (default: local)")
    parser.add_argument(
        "--conf",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --conf lake.root=/data/lake (repeatable)",
    )
    return parser


@dataclass
class JobContext:
    job: str
    run_id: str
    settings: Settings
    spark: SparkSession
    lake: Lake
    record: RunRecord
    metrics: dict[str, int] = field(default_factory=dict)

    def count(self, **values: int) -> None:
        """Add to this run's metrics (saved in ops.job_runs.metrics)."""
        for key, value in values.items():
            self.metrics[key] = self.metrics.get(key, 0) + int(value)


@contextmanager
def job_context(
    job: str,
    env: str = "local",
    overrides: Sequence[str] = (),
    spark: SparkSession | None = None,
    settings: Settings | None = None,
) -> Iterator[JobContext]:
    """Settings, session and lake for one run; records the run (failed ones too)."""
    settings = settings or load_settings(env, list(overrides))
    run_id = f"{job}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    logs.configure(settings.logging.level, settings.logging.format)
    logs.set_context(run_id=run_id, job=job)
    if uses_development_keys(settings):
        log.warning(
            "DEVELOPMENT KEYS: privacy keys are the published local defaults; pseudonyms and "
            "encrypted PII of this lake protect nothing (set BEHAVIOR_LAKE_PSEUDONYM_KEY and "
            "BEHAVIOR_LAKE_ENCRYPTION_KEY for real data)"
        )
    spark = spark or build_session(settings)
    lake = open_lake(spark, settings)
    rec = RunRecord(
        run_id=run_id,
        job=job,
        env=settings.env,
        engine=lake.engine,
        started_at=datetime.now(UTC),
    )
    ctx = JobContext(job, run_id, settings, spark, lake, rec)
    t0 = time.monotonic()
    log.info("start %s (env=%s, engine=%s)", job, settings.env, lake.engine)
    record_killed(lake, settings)
    try:
        with lease.registered(
            settings.lake.root, run_id, job=job, env=settings.env, engine=lake.engine
        ):
            yield ctx
        rec.status = "success"
    except BaseException as exc:
        rec.status = "failed"
        rec.error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        rec.ended_at = datetime.now(UTC)
        rec.metrics = dict(ctx.metrics)
        global LAST_RUN
        LAST_RUN = rec
        try:
            record_run(lake, rec)
            audit(
                lake,
                settings.governance.actor,
                run_id,
                [
                    AuditEvent(
                        f"job:{job}",
                        rows=rec.rows_out,
                        reason=rec.status + (f": {rec.error}" if rec.error else ""),
                    )
                ],
            )
        except Exception:  # never hide the job's own outcome behind a bookkeeping error
            log.exception("could not record the run in ops.job_runs / ops.audit_log")
        log.info(
            "%s %s in %.1fs: rows_in=%s rows_out=%s",
            job,
            rec.status,
            time.monotonic() - t0,
            rec.rows_in,
            rec.rows_out,
        )


def record_killed(lake: Lake, settings: Settings) -> None:
    """Give runs that were killed (SIGKILL, out of memory, a lost machine) their
    ops.job_runs row: they are found in the running-job register with no live process."""
    for info in lease.dead_runs(settings.lake.root):
        try:
            since = datetime.fromisoformat(info["since"])
        except (KeyError, ValueError):
            since = datetime.now(UTC)
        rec = RunRecord(
            run_id=str(info.get("run_id")),
            job=str(info.get("job", "unknown")),
            env=str(info.get("env", settings.env)),
            engine=str(info.get("engine", lake.engine)),
            started_at=since,
            ended_at=datetime.now(UTC),
            status="killed",
            error=f"process {info.get('pid')} ended without recording its run",
        )
        log.warning("run %s of %s was killed: recorded in ops.job_runs", rec.run_id, rec.job)
        try:
            record_run(lake, rec)
        except Exception:
            log.exception("could not record the killed run %s", rec.run_id)


def main(
    job: str,
    argv: Sequence[str] | None,
    parser: argparse.ArgumentParser,
    body: Callable[[JobContext, argparse.Namespace], None],
) -> int:
    """Entry-point wrapper: parse, run, and turn known failures into one clear line."""
    args = parser.parse_args(argv)
    try:
        with job_context(job, args.env, args.conf) as ctx:
            body(ctx, args)
    except ConfigError as exc:
        print(f"{job}: config error: {exc}", file=sys.stderr)
        return 2
    except JavaMissingError as exc:
        print(f"{job}: {exc}", file=sys.stderr)
        return 3
    except (LakeError, ValueError, LookupError) as exc:
        log.error("%s failed: %s", job, exc)
        print(f"{job}: failed: {exc}", file=sys.stderr)
        return 1
    return 0
