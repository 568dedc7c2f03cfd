"""Generic table tests from the catalog (after dbt's `unique`, `not_null` and
`accepted_values`): a spec's key columns identify its rows, and its code columns hold
only the declared codes."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from behavior_lake.lake.base import TableSpec


def key_problems(df: DataFrame, spec: TableSpec) -> list[str]:
    """Why `df` breaks `spec`'s key and accepted values (empty = it holds).

    Key columns the schema declares non-nullable must never be null; the key as a whole
    must be unique (nulls of nullable key columns compare equal, as in a GROUP BY)."""
    problems: list[str] = []
    nullable = {f.name: f.nullable for f in spec.schema.fields}
    for col in spec.key:
        if not nullable[col]:
            nulls = df.filter(F.col(col).isNull()).limit(1).count()
            if nulls:
                problems.append(f"{spec.name}: key column {col} has null values")
    if spec.key:
        dup = (
            df.groupBy(*spec.key)
            .count()
            .filter(F.col("count") > 1)
            .orderBy(F.desc("count"))
            .limit(1)
            .collect()
        )
        if dup:
            example = {k: v for k, v in dup[0].asDict().items() if k != "count"}
            problems.append(
                f"{spec.name}: key {list(spec.key)} is not unique "
                f"(e.g. {example} x{dup[0]['count']})"
            )
    for col, allowed in spec.accepted.items():
        bad = (
            df.filter(F.col(col).isNotNull() & ~F.col(col).isin(*allowed))
            .select(col)
            .distinct()
            .limit(5)
            .collect()
        )
        if bad:
            problems.append(
                f"{spec.name}: column {col} holds {sorted(r[0] for r in bad)}, "
                f"not in the accepted values {list(allowed)}"
            )
    return problems
