"""Generic table tests from the catalog (after dbt's `unique`, `not_null` and
`accepted_values`): a spec's key columns identify its rows, and its code columns hold
only the declared codes."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

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


NUMERIC = (
    T.ByteType,
    T.ShortType,
    T.IntegerType,
    T.LongType,
    T.FloatType,
    T.DoubleType,
    T.DecimalType,
)


def numeric_columns(spec: TableSpec) -> list[str]:
    return [f.name for f in spec.schema.fields if isinstance(f.dataType, NUMERIC)]


def range_problems(df: DataFrame, spec: TableSpec) -> list[str]:
    """Why `df` breaks `spec`'s declared ranges and invariants (empty = it holds). NaN
    and infinities are out of every range; nulls are the nullability contract's business.
    One aggregate pass counts the violations of every rule."""
    rules: dict[str, F.Column] = {}
    for col, (low, high) in spec.ranges.items():
        c = F.col(col).cast("double")
        bad = F.isnan(c) | (F.abs(c) == float("inf"))
        if low is not None:
            bad = bad | (c < F.lit(float(low)))
        if high is not None:
            bad = bad | (c > F.lit(float(high)))
        shown = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        rules[f"column {col} outside {shown}"] = F.col(col).isNotNull() & bad
    for cond in spec.invariants:
        rules[f"invariant {cond!r} broken"] = ~F.coalesce(F.expr(cond), F.lit(True))
    if not rules:
        return []
    names = list(rules)
    counts = df.agg(
        *[
            F.sum(F.when(rule, 1).otherwise(0)).alias(f"r{i}")
            for i, rule in enumerate(rules.values())
        ]
    ).first()
    return [
        f"{spec.name}: {names[i]} in {counts[f'r{i}']} row(s)"
        for i in range(len(names))
        if counts[f"r{i}"]
    ]
