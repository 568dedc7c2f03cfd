"""ops.audit_log: who did what to which table, when and why (append-only)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from behavior_lake.contracts.governance import AUDIT_LOG
from behavior_lake.lake import Lake
from behavior_lake.lake.base import spec_rows


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
    rows = [
        (actor, e.action, e.table, e.rows, (e.reason or None) and e.reason[:2000], run_id)
        for e in events
    ]
    lake.append(AUDIT_LOG.name, spec_rows(lake.spark, AUDIT_LOG, rows, stamp="at"))
