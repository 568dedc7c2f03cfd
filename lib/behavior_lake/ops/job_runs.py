"""Append one `ops.job_runs` row per run."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pyspark.sql import Row

from behavior_lake.contracts.ops import JOB_RUNS
from behavior_lake.lake import Lake


@dataclass
class RunRecord:
    run_id: str
    job: str
    env: str
    engine: str
    started_at: datetime
    ended_at: datetime | None = None
    status: str = "running"
    rows_in: int | None = None
    rows_out: int | None = None
    error: str | None = None
    metrics: dict[str, int] = field(default_factory=dict)


def record_run(lake: Lake, rec: RunRecord) -> None:
    row = Row(
        run_id=rec.run_id,
        job=rec.job,
        env=rec.env,
        engine=rec.engine,
        started_at=rec.started_at,
        ended_at=rec.ended_at,
        status=rec.status,
        rows_in=rec.rows_in,
        rows_out=rec.rows_out,
        error=(rec.error or None) and rec.error[:4000],
        metrics={k: int(v) for k, v in rec.metrics.items()},
    )
    df = lake.spark.createDataFrame([row], JOB_RUNS.schema).coalesce(1)
    lake.append(JOB_RUNS.name, df)
