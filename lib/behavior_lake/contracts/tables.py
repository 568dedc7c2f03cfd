"""Every static table spec: schema, partitioning, key and grain ("one row per ...").

Contract modules add their specs with `register` at import; `TABLES` is the read-only
view. Specs that depend on configuration are built by `behavior_lake.catalog`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from behavior_lake.lake.base import TableSpec

_REGISTERED: dict[str, TableSpec] = {}
TABLES: Mapping[str, TableSpec] = MappingProxyType(_REGISTERED)


def register(*specs: TableSpec) -> None:
    for spec in specs:
        if spec.name in _REGISTERED and _REGISTERED[spec.name] != spec:
            raise ValueError(f"table {spec.name} is registered twice with different specs")
        _REGISTERED[spec.name] = spec


def _load_all() -> None:
    # Importing the contract modules registers their tables.
    from behavior_lake.contracts import (  # noqa: F401
        activation,
        bronze,
        experiments,
        gold,
        governance,
        ml,
        ops,
        silver,
    )


_load_all()
