"""The pipeline DAG (conf pipeline.tasks): order, selection, local runs with retries/SLAs."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from behavior_lake import logs
from behavior_lake.config import ConfigError, Settings, TaskSettings
from behavior_lake.contracts.ops import SLA_BREACHES
from behavior_lake.lake import Lake
from behavior_lake.lake.base import spec_rows
from behavior_lake.ops.job_runs import RunRecord
from behavior_lake.runtime import ANY_TABLE, JobDef

log = logging.getLogger(__name__)


def check_dag(tasks: Mapping[str, TaskSettings], jobs: Collection[str]) -> list[str]:
    """Validate and return the tasks in dependency order (stable: config order)."""
    if not tasks:
        raise ConfigError("pipeline.tasks: expected at least one task")
    for name, t in tasks.items():
        if t.job not in jobs:
            raise ConfigError(
                f"pipeline.tasks.{name}.job: unknown job {t.job!r}; expected one of {sorted(jobs)}"
            )
        for dep in t.depends_on:
            if dep not in tasks:
                raise ConfigError(
                    f"pipeline.tasks.{name}.depends_on: unknown task {dep!r}; "
                    f"expected one of {list(tasks)}"
                )
        if t.retries < 0:
            raise ConfigError(f"pipeline.tasks.{name}.retries: expected >= 0")
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(n: str, path: list[str]) -> None:
        if state.get(n) == 2:
            return
        if state.get(n) == 1:
            raise ConfigError(f"pipeline.tasks: dependency cycle {' -> '.join([*path, n])}")
        state[n] = 1
        for d in tasks[n].depends_on:
            visit(d, [*path, n])
        state[n] = 2
        order.append(n)

    for n in tasks:
        visit(n, [])
    return order


def upstream_of(tasks: Mapping[str, TaskSettings]) -> dict[str, set[str]]:
    """Every task's transitive dependencies."""
    memo: dict[str, set[str]] = {}

    def up(n: str) -> set[str]:
        if n not in memo:
            memo[n] = set()
            for d in tasks[n].depends_on:
                memo[n] |= {d, *up(d)}
        return memo[n]

    return {n: up(n) for n in tasks}


def lineage_problems(
    tasks: Mapping[str, TaskSettings], jobs: Mapping[str, JobDef], settings: Settings | None
) -> list[str]:
    """Where pipeline.tasks breaks the DAG the jobs' declarations imply: a task must run
    after every task that writes a table it reads or deletes from, and the outputs a task
    is held to (SLA staleness) must be tables its job writes."""
    outs = {n: jobs[t.job].declared_outputs(settings) for n, t in tasks.items()}
    writers: dict[str, list[str]] = {}
    for name, outputs in outs.items():
        for o in outputs:
            if o.table != ANY_TABLE and set(o.modes) - {"delete"}:
                writers.setdefault(o.table, []).append(name)
    upstream = upstream_of(tasks)
    problems = []
    for name, t in tasks.items():
        deletes = {o.table for o in outs[name] if "delete" in o.modes}
        for table in sorted(set(jobs[t.job].inputs) | deletes):
            for w in writers.get(table, []):
                if w != name and w not in upstream[name]:
                    problems.append(
                        f"pipeline.tasks.{name}.depends_on: its job {t.job} "
                        f"{'deletes from' if table in deletes else 'reads'} {table}, which "
                        f"task {w} writes: add {w} (or a task downstream of it)"
                    )
        written = {o.table for o in outs[name]}
        problems += [
            f"pipeline.tasks.{name}.outputs: job {t.job} does not write {table} "
            f"(it writes {sorted(written - {ANY_TABLE})})"
            for table in t.outputs
            if table not in written
        ]
    return problems


def check_lineage(
    tasks: Mapping[str, TaskSettings], jobs: Mapping[str, JobDef], settings: Settings | None
) -> list[str]:
    """check_dag, then lineage_problems as one ConfigError; the task order."""
    order = check_dag(tasks, jobs)
    problems = lineage_problems(tasks, jobs, settings)
    if problems:
        raise ConfigError("; ".join(problems))
    return order


def select(
    tasks: Mapping[str, TaskSettings],
    jobs: Collection[str],
    start: str | None = None,
    only: Sequence[str] = (),
) -> list[str]:
    """All tasks, or `only` these, or `start` and everything downstream of it."""
    order = check_dag(tasks, jobs)
    for n in [*only, *([start] if start else [])]:
        if n not in tasks:
            raise ConfigError(f"unknown task {n!r}; expected one of {order}")
    if only:
        return [n for n in order if n in set(only)]
    if start:
        keep = {start}
        for n in order:
            if any(d in keep for d in tasks[n].depends_on):
                keep.add(n)
        return [n for n in order if n in keep]
    return order


@dataclass
class TaskResult:
    task: str
    status: str  # success | failed | skipped
    attempts: int = 0
    seconds: float = 0.0
    rows: int | None = None
    detail: str = ""


Runner = Callable[[str, list[str]], tuple[int, RunRecord | None]]


def job_runner(jobs: Mapping[str, JobDef]) -> Runner:
    """Run a job by name: its exit code and run record."""
    return lambda job, argv: jobs[job].run(argv)


def run_tasks(
    settings: Settings,
    names: Sequence[str],
    base_args: Sequence[str],
    runner: Runner,
    sleep: Callable[[float], None] = time.sleep,
) -> list[TaskResult]:
    """Run tasks in order; a failure skips its dependents, not unrelated tasks."""
    tasks = settings.pipeline.tasks
    results: dict[str, TaskResult] = {}
    outer = logs.get_context()
    for i, name in enumerate(names, start=1):
        t = tasks[name]
        blocked = [d for d in t.depends_on if d in results and results[d].status != "success"]
        if blocked and t.run_if == "all_done":
            log.warning(
                "[%d/%d] %s runs although upstream %s did not succeed (run_if: all_done)",
                i, len(names), name, blocked,
            )  # fmt: skip
        elif blocked:
            results[name] = TaskResult(name, "skipped", detail=f"upstream {', '.join(blocked)}")
            log.warning(
                "[%d/%d] %s skipped: upstream %s did not succeed", i, len(names), name, blocked
            )
            continue
        log.info("[%d/%d] %s (job %s) starting", i, len(names), name, t.job)
        res = TaskResult(name, "failed")
        t0 = time.monotonic()
        for attempt in range(1, t.retries + 2):
            res.attempts = attempt
            logs.set_context(task=name)
            rec: RunRecord | None = None
            try:
                rc, rec = runner(t.job, [*base_args, *t.args])
            except Exception as exc:  # a crashing job is a failed attempt, not a dead runner
                log.exception("%s attempt %d crashed", name, attempt)
                rc, res.detail = 1, f"{type(exc).__name__}: {exc}"
            finally:
                logs.set_context(**outer)  # the job set its own run_id/job
            if rec is not None:
                res.rows = rec.rows_out if rec.rows_out is not None else rec.rows_in
                if rec.error:
                    res.detail = rec.error
            if rc == 0:
                res.status, res.detail = "success", ""
                break
            res.detail = res.detail or f"exit code {rc}"
            if attempt <= t.retries:
                log.warning(
                    "%s attempt %d/%d failed (%s); retrying in %.0fs",
                    name, attempt, t.retries + 1, res.detail, t.retry_delay_seconds,
                )  # fmt: skip
                sleep(t.retry_delay_seconds)
        res.seconds = time.monotonic() - t0
        results[name] = res
        log.info("[%d/%d] %s %s in %.1fs", i, len(names), name, res.status, res.seconds)
    return [results[n] for n in names]


def sla_breaches(
    lake: Lake, settings: Settings, results: Sequence[TaskResult], run_id: str
) -> list[tuple]:
    """Duration and staleness breaches of the tasks that ran (rows for ops.sla_breaches)."""
    now = datetime.now(UTC)
    out = []
    for r in results:
        t = settings.pipeline.tasks[r.task]
        limit = t.sla.max_duration_minutes * 60
        if r.status == "success" and r.seconds > limit:
            out.append(
                (run_id, r.task, "duration", float(r.seconds / 60), float(t.sla.max_duration_minutes),
                 f"ran {r.seconds / 60:.1f} min > {t.sla.max_duration_minutes} min")
            )  # fmt: skip
        for table in t.outputs:
            hist = lake.history(table, limit=1) if lake.exists(table) else []
            ts = hist[0].get("timestamp") if hist else None
            if ts is None:
                age_h = float("inf")
            else:
                when = ts if isinstance(ts, datetime) else datetime.fromtimestamp(ts / 1000, UTC)
                if when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)
                age_h = (now - when).total_seconds() / 3600
            if age_h > t.sla.max_staleness_hours:
                out.append(
                    (run_id, r.task, "staleness", age_h if age_h != float("inf") else None,
                     float(t.sla.max_staleness_hours),
                     f"{table} last written {'never' if ts is None else f'{age_h:.1f} h ago'} "
                     f"(task {r.status})")
                )  # fmt: skip
    return out


def record_breaches(lake: Lake, rows: Sequence[tuple]) -> None:
    if not rows:
        return
    lake.append(SLA_BREACHES.name, spec_rows(lake.spark, SLA_BREACHES, list(rows), "detected_at"))


def summary(results: Sequence[TaskResult]) -> str:
    lines = [f"{'task':<18} {'status':<8} {'tries':>5} {'seconds':>8} {'rows':>10}  detail"]
    for r in results:
        rows = "" if r.rows is None else str(r.rows)
        lines.append(
            f"{r.task:<18} {r.status:<8} {r.attempts:>5} {r.seconds:>8.1f} {rows:>10}  "
            f"{r.detail[:80]}"
        )
    return "\n".join(lines)
