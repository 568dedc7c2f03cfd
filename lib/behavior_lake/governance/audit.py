"""ops.audit_log: who did what to which table, when and why (append-only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pyspark.sql import functions as F
from pyspark.sql import types as T

from behavior_lake.contracts.governance import AUDIT_LOG
from behavior_lake.lake import Lake


@dataclass(frozen=True)
class AuditEvent:
    action: str
    table: str | None = None
    rows: int | None = None
    reason: str | None = None


def audit(lake: Lake, actor: str, run_id: str | None, events: Sequence[AuditEvent]) -> None:
    """Append events; the log is only ever appended to (no job updates or deletes it)."""
    if not events:
        return
    schema = T.StructType(
        [T.StructField(f.name, f.dataType, True) for f in AUDIT_LOG.schema.fields[1:]]
    )
    rows = [
        (actor, e.action, e.table, e.rows, (e.reason or None) and e.reason[:2000], run_id)
        for e in events
    ]
    df = lake.spark.createDataFrame(rows, schema).withColumn("at", F.current_timestamp())
    lake.append(AUDIT_LOG.name, df.select(*AUDIT_LOG.schema.fieldNames()))
