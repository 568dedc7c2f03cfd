"""Row filters as values: `Where.eq`, `Where.isin` and ranges, combined with `&`.

The Lake takes these instead of SQL text. Each engine renders them in one place: as a
Column (filters, row checks, delta-spark deletes), as SQL with quoted identifiers and
escaped literals (delta-spark `replaceWhere`), and by structure (which columns a filter
reads decides whether a delete can drop whole partition files without a scan).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import reduce
from typing import Any

from pyspark.sql import Column
from pyspark.sql import functions as F

_OPS = {"=": "__eq__", "<": "__lt__", "<=": "__le__", ">": "__gt__", ">=": "__ge__"}


def sql_identifier(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def sql_literal(value: Any) -> str:
    """A Spark SQL literal for a Python value (strings escaped for Spark's parser)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"no SQL literal for {value!r}")
        return repr(value)
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            raise ValueError(f"timestamp literal {value!r}: pass a naive UTC datetime")
        return f"TIMESTAMP'{value.isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE'{value.isoformat()}'"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise TypeError(f"no SQL literal for {type(value).__name__} {value!r}")


@dataclass(frozen=True)
class _Term:
    column: str
    op: str  # =, <, <=, >, >=, in, is_null
    value: Any

    def sql(self) -> str:
        col = sql_identifier(self.column)
        if self.op == "is_null":
            return f"{col} IS NULL"
        if self.op == "in":
            return f"{col} IN ({', '.join(sql_literal(v) for v in self.value)})"
        return f"{col} {self.op} {sql_literal(self.value)}"

    def column_expr(self) -> Column:
        col = F.col(sql_identifier(self.column))
        if self.op == "is_null":
            return col.isNull()
        if self.op == "in":
            return col.isin(*[F.lit(v) for v in self.value])
        return getattr(col, _OPS[self.op])(F.lit(self.value))


@dataclass(frozen=True)
class Where:
    """A conjunction of comparisons between a column and literal values."""

    terms: tuple[_Term, ...]

    @staticmethod
    def eq(column: str, value: Any) -> Where:
        return Where._one(column, "=", value)

    @staticmethod
    def isin(column: str, values: Iterable[Any]) -> Where:
        vals = tuple(dict.fromkeys(values))
        if not vals:
            raise ValueError(f"Where.isin({column!r}): no values (nothing would match)")
        for v in vals:
            sql_literal(v)
        return Where((_Term(column, "in", vals),))

    @staticmethod
    def is_null(column: str) -> Where:
        return Where((_Term(column, "is_null", None),))

    @staticmethod
    def lt(column: str, value: Any) -> Where:
        return Where._one(column, "<", value)

    @staticmethod
    def le(column: str, value: Any) -> Where:
        return Where._one(column, "<=", value)

    @staticmethod
    def gt(column: str, value: Any) -> Where:
        return Where._one(column, ">", value)

    @staticmethod
    def ge(column: str, value: Any) -> Where:
        return Where._one(column, ">=", value)

    @staticmethod
    def between(column: str, low: Any, high: Any) -> Where:
        """low <= column <= high."""
        return Where.ge(column, low) & Where.le(column, high)

    @staticmethod
    def _one(column: str, op: str, value: Any) -> Where:
        if value is None:
            raise ValueError(f"Where on {column!r}: None never compares equal; filter nulls apart")
        sql_literal(value)
        return Where((_Term(column, op, value),))

    def __and__(self, other: Where) -> Where:
        return Where(self.terms + other.terms)

    @property
    def columns(self) -> frozenset[str]:
        return frozenset(t.column for t in self.terms)

    def sql(self) -> str:
        return " AND ".join(t.sql() for t in self.terms)

    def column(self) -> Column:
        return reduce(lambda a, b: a & b, (t.column_expr() for t in self.terms))

    def __str__(self) -> str:
        return self.sql()
