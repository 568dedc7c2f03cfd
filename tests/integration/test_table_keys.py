"""dbt-style tests over every table the demo lake holds: key columns not null and unique,
code columns within their accepted values (contracts.checks)."""

from __future__ import annotations

from behavior_lake.contracts.checks import key_problems, range_problems
from tests.integration.conftest import Demo


def test_every_demo_table_keeps_its_key_and_codes(demo: Demo) -> None:
    lake = demo.lake
    held = [name for name in sorted(lake.specs) if lake.exists(name)]
    # the demo lake holds bronze, silver and gold at least
    assert {"bronze.events", "silver.events", "silver.sessions", "gold.user_features"} <= set(held)
    problems = [p for name in held for p in key_problems(lake.read(name), lake.specs[name])]
    assert problems == []


def test_every_demo_table_keeps_its_ranges(modeled: Demo) -> None:
    """Every published number within its declared range (rates in [0, 1], counts never
    negative, expected days within the survival window...) on the demo lake."""
    lake = modeled.lake
    held = [name for name in sorted(lake.specs) if lake.exists(name)]
    ranged = [n for n in held if lake.specs[n].ranges or lake.specs[n].invariants]
    assert {"gold.daily_kpis", "gold.retention_cohorts", "gold.funnels",
            "gold.churn_scores"} <= set(ranged)  # fmt: skip
    problems = [p for name in ranged for p in range_problems(lake.read(name), lake.specs[name])]
    assert problems == []
