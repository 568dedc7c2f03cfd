"""What every job shares: its declaration (`JobDef`: inputs, outputs and their write
modes, body, arguments), settings, session, a lake that refuses undeclared writes, and
its ops.job_runs row."""

from __future__ import annotations

import argparse
import functools
import logging
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Literal

from pyspark.sql import SparkSession

from behavior_lake import logs
from behavior_lake.catalog import open_lake
from behavior_lake.config import ConfigError, Settings, load_settings
from behavior_lake.contracts.governance import AUDIT_LOG
from behavior_lake.contracts.ops import JOB_RUNS
from behavior_lake.governance.audit import AuditEvent, audit
from behavior_lake.lake import Lake, LakeError
from behavior_lake.ops import lease
from behavior_lake.ops.job_runs import RunRecord, record_run
from behavior_lake.privacy_keys import uses_development_keys
from behavior_lake.spark import JavaMissingError, build_session

log = logging.getLogger(__name__)

# How a job writes a table (Lake method -> mode): append; overwrite = replace;
# overwrite(where=...) = replace_partitions; replace_keys; merge; delete.
MODES = ("append", "replace", "replace_partitions", "replace_keys", "merge", "delete")
Mode = Literal["append", "replace", "replace_partitions", "replace_keys", "merge", "delete"]
# Non-table inputs and outputs a JobDef may name.
LANDING = "landing"  # the landing folder (landing.root)
MODEL_SEGMENTS = "model:segments"  # the registered segmentation model (segments.model_name)
MODEL_CHURN = "model:churn"  # the registered churn model (churn.model_name)
ANY_TABLE = "*"  # any table, also ones no spec declares (erasure)
# Written by the runner itself for every job (not declared per job).
BOOKKEEPING = (JOB_RUNS.name, AUDIT_LOG.name)


@dataclass(frozen=True)
class Output:
    """A table a job writes and the modes it writes it with."""

    table: str
    modes: tuple[Mode, ...]

    def __post_init__(self) -> None:
        bad = [m for m in self.modes if m not in MODES]
        if not self.modes or bad:
            raise ValueError(f"{self.table}: write modes {bad or '()'}; expected some of {MODES}")


def out(table: str, *modes: Mode) -> Output:
    return Output(table, tuple(modes))


@dataclass(frozen=True)
class JobDef:
    """A job as data: what it reads, what it writes and how, and its body.

    `inputs`: catalog tables, `landing` or `model:<name>`; `feedback`: tables read as
    state left by earlier runs of later tasks (no ordering implied); `outputs`: tables
    (or models) with their write modes; `settings_outputs`: outputs that depend on
    configuration (retention rules). The pipeline derives its DAG from these (pipeline.check_lineage);
    the runner gives the body a lake that refuses writes the declaration does not list.
    """

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[Output, ...]
    body: Callable[[JobContext, argparse.Namespace], None]
    arguments: Callable[[argparse.ArgumentParser], None] | None = None
    description: str = ""
    settings_outputs: Callable[[Settings], tuple[Output, ...]] | None = None
    feedback: tuple[str, ...] = ()

    def declared_outputs(self, settings: Settings | None = None) -> tuple[Output, ...]:
        extra = self.settings_outputs(settings) if settings and self.settings_outputs else ()
        return self.outputs + tuple(extra)

    def parser(self) -> argparse.ArgumentParser:
        parser = base_parser(self.name, self.description)
        if self.arguments:
            self.arguments(parser)
        return parser

    def run(self, argv: Sequence[str] | None = None) -> tuple[int, RunRecord | None]:
        """Run once; the exit code and the run's record (None when it never started)."""
        return run_job(self, argv)

    def cli(self, argv: Sequence[str] | None = None) -> int:
        return self.run(argv)[0]


class UndeclaredWriteError(LakeError):
    pass


class DeclaredLake:
    """A Lake that lets a job write only what its JobDef declares (table and mode);
    reads and everything else pass through."""

    def __init__(self, lake: Lake, job: str, outputs: Sequence[Output]) -> None:
        self._lake = lake
        self._job = job
        self._modes: dict[str, set[str]] = {}
        for o in outputs:
            self._modes.setdefault(o.table, set()).update(o.modes)
        for table in BOOKKEEPING:
            self._modes.setdefault(table, set()).add("append")

    def __getattr__(self, name: str):
        return getattr(self._lake, name)

    def _allow(self, table: str, mode: str) -> None:
        if mode not in self._modes.get(table, ()) and mode not in self._modes.get(ANY_TABLE, ()):
            declared = {t: sorted(m) for t, m in sorted(self._modes.items())}
            raise UndeclaredWriteError(
                f"job {self._job} wrote {table} with mode {mode}, which its JobDef does not "
                f"declare (declared: {declared})"
            )

    def append(self, table: str, df, **kw):
        self._allow(table, "append")
        return self._lake.append(table, df, **kw)

    def overwrite(self, table: str, df, *, where=None, **kw):
        self._allow(table, "replace" if where is None else "replace_partitions")
        return self._lake.overwrite(table, df, where=where, **kw)

    def merge(self, table: str, df, keys, **kw):
        self._allow(table, "merge")
        return self._lake.merge(table, df, keys, **kw)

    def replace_keys(self, table: str, df, key, keys, **kw):
        self._allow(table, "replace_keys")
        return self._lake.replace_keys(table, df, key, keys, **kw)

    def delete(self, table: str, where):
        self._allow(table, "delete")
        return self._lake.delete(table, where)


def iso_date(value: str) -> date | None:
    """argparse type for YYYY-MM-DD dates; an empty value is no date (a scheduler's
    parameter left empty, e.g. the bundle's `as_of` on a normal daily run)."""
    if not value.strip():
        return None
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
    job_def: JobDef | None = None,
) -> Iterator[JobContext]:
    """Settings, session and lake for one run; records the run (failed ones too). With
    `job_def`, the context's lake refuses writes the declaration does not list."""
    settings = settings or load_settings(env, list(overrides))
    run_id = f"{job}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    logs.configure(settings.logging.level, settings.logging.format)
    logs.set_context(run_id=run_id, job=job)
    _warn_development_keys(settings)
    spark = spark or build_session(settings)
    lake = open_lake(spark, settings)
    rec = RunRecord(
        run_id=run_id,
        job=job,
        env=settings.env,
        engine=lake.engine,
        started_at=datetime.now(UTC),
    )
    guarded = DeclaredLake(lake, job, job_def.declared_outputs(settings)) if job_def else lake
    ctx = JobContext(job, run_id, settings, spark, guarded, rec)  # type: ignore[arg-type]
    t0 = time.monotonic()
    log.info("start %s (env=%s, engine=%s)", job, settings.env, lake.engine)
    record_killed(lake, settings)
    try:
        with lease.registered(
            settings.lake.root, run_id, spark=spark, job=job, env=settings.env, engine=lake.engine
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
        _record(lake, settings, rec)
        log.info(
            "%s %s in %.1fs: rows_in=%s rows_out=%s",
            job,
            rec.status,
            time.monotonic() - t0,
            rec.rows_in,
            rec.rows_out,
        )


@functools.cache
def _warn_development_keys_once(root: str) -> None:
    log.warning(
        "DEVELOPMENT KEYS: privacy keys are the published local defaults; pseudonyms and "
        "encrypted PII of the lake at %s protect nothing (set BEHAVIOR_LAKE_PSEUDONYM_KEY "
        "and BEHAVIOR_LAKE_ENCRYPTION_KEY for real data)",
        root,
    )


def _warn_development_keys(settings: Settings) -> None:
    """Once per process and lake (a pipeline run is many jobs in one process)."""
    if uses_development_keys(settings):
        _warn_development_keys_once(settings.lake.root)


def _record(lake: Lake, settings: Settings, rec: RunRecord) -> None:
    """The run's ops.job_runs row and audit event; a bookkeeping error never hides the
    job's own outcome."""
    reason = rec.status + (f": {rec.error}" if rec.error else "")
    try:
        record_run(lake, rec)
        audit(
            lake,
            settings.governance.actor,
            rec.run_id,
            [AuditEvent(f"job:{rec.job}", rows=rec.rows_out, reason=reason)],
        )
    except Exception:
        log.exception("could not record the run in ops.job_runs / ops.audit_log")


def record_killed(lake: Lake, settings: Settings) -> None:
    """Give runs that were killed (SIGKILL, out of memory, a lost machine) their
    ops.job_runs row: they are found in the running-job register with no live process."""
    for info in lease.dead_runs(settings.lake.root, spark=lake.spark):
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


def run_job(job_def: JobDef, argv: Sequence[str] | None) -> tuple[int, RunRecord | None]:
    """Parse, run, and turn known failures into one clear line; the exit code and the
    run's record (None when the run never started: bad arguments or configuration)."""
    job = job_def.name
    args = job_def.parser().parse_args(argv)
    ctx: JobContext | None = None
    try:
        with job_context(job, args.env, args.conf, job_def=job_def) as ctx:
            job_def.body(ctx, args)
    except ConfigError as exc:
        print(f"{job}: config error: {exc}", file=sys.stderr)
        return 2, None
    except JavaMissingError as exc:
        print(f"{job}: {exc}", file=sys.stderr)
        return 3, None
    except (LakeError, ValueError, LookupError) as exc:
        log.error("%s failed: %s", job, exc)
        print(f"{job}: failed: {exc}", file=sys.stderr)
        return 1, ctx.record if ctx else None
    return 0, ctx.record
