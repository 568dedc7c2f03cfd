"""The gold.user_features snapshots models read: which dates exist, which one to use,
the documented imputation values, the features a model needs."""

from __future__ import annotations

import logging
from datetime import date

from pyspark.sql import DataFrame

from behavior_lake.contracts.gold import CATALOG, USER_FEATURES
from behavior_lake.lake import Lake, LakeError

log = logging.getLogger(__name__)
FEATURES = USER_FEATURES
CHAMPION = "champion"


def snapshot_dates(lake: Lake) -> list[date]:
    if not lake.exists(FEATURES):
        return []
    return sorted(r[0] for r in lake.read(FEATURES).select("as_of_date").distinct().collect())


def pick_snapshot(lake: Lake, as_of: date | None) -> date:
    have = snapshot_dates(lake)
    if not have:
        raise LakeError(f"{FEATURES} has no snapshot yet: run gold_features first")
    if as_of is None:
        return have[-1]
    if as_of not in have:
        raise LakeError(
            f"--as-of {as_of}: no {FEATURES} snapshot for that date "
            f"(have {', '.join(str(d) for d in have[-5:])}{' ...' if len(have) > 5 else ''})"
        )
    return as_of


def catalog_fills(lake: Lake) -> dict[str, float]:
    """The documented imputation values, read from gold.feature_catalog."""
    if not lake.exists(CATALOG.name):
        return {}
    rows = lake.read(CATALOG.name).select("feature", "impute_value").collect()
    return {r.feature: r.impute_value for r in rows if r.impute_value is not None}


def check_features(df: DataFrame, wanted: list[str], key: str) -> None:
    missing = [c for c in wanted if c not in df.columns]
    if missing:
        raise ValueError(
            f"{key}: feature(s) {missing} are not columns of {FEATURES}; expected names "
            "from gold.feature_catalog"
        )
