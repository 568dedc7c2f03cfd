"""Every declared table: schema, partitioning and grain ("one row per ...").

Layers add their specs with `register`; the Lake creates declared tables on first
write and checks every write against them.
"""

from __future__ import annotations

from behavior_lake.lake.base import TableSpec

TABLES: dict[str, TableSpec] = {}


def register(*specs: TableSpec) -> None:
    for spec in specs:
        TABLES[spec.name] = spec


def _load_all() -> None:
    # Importing the contract modules registers their tables.
    from behavior_lake.contracts import bronze, gold, governance, ml, ops, silver  # noqa: F401


_load_all()
