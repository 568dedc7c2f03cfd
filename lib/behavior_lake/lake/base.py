"""The Lake port: the only way jobs touch Delta tables.

Tables are addressed as `layer.table` and stored at `<root>/<layer>/<table>`. A table
is created with a declared schema and partition columns (`TableSpec`); writes whose
schema differs fail with a message listing the differences, unless `evolve=True`
(new nullable columns are added; missing columns are written as null).
"""

from __future__ import annotations

import logging
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote, urlparse

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from behavior_lake.lake.where import Where

log = logging.getLogger(__name__)

_TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")


class LakeError(RuntimeError):
    """Base of the errors the Lake raises."""


class TableNotFoundError(LakeError):
    pass


class SchemaMismatchError(LakeError):
    pass


@dataclass(frozen=True)
class TableSpec:
    """A table's contract: name, schema, partitioning, what one row is and the columns
    that identify it.

    `key`: the columns unique and not null in every row (the grain as columns; tested
    over every table of the demo lake). A table whose rows have no identity (raw lines,
    duplicates included) leaves `key` empty and says why in `unkeyed`.
    `cluster_by`: the column rows are laid out by within a partition (files hold
    contiguous ranges of it), or None.
    `accepted`: columns restricted to a set of values (status and reason codes).
    `ranges`: the valid range of numeric columns, (low, high) inclusive, None = open (what a
    published number can mean: a rate is in [0, 1], a count is never negative).
    `invariants`: SQL conditions every row satisfies (e.g. "dau <= mau").
    """

    name: str
    schema: T.StructType
    partition_by: tuple[str, ...] = ()
    grain: str = ""
    description: str = ""
    key: tuple[str, ...] = ()
    unkeyed: str = ""
    cluster_by: str | None = None
    accepted: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    ranges: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    invariants: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        validate_table_name(self.name)
        names = self.schema.fieldNames()
        for what, cols in (
            ("partition", self.partition_by),
            ("key", self.key),
            ("accepted-values", tuple(self.accepted)),
            ("range", tuple(self.ranges)),
            ("cluster", (self.cluster_by,) if self.cluster_by else ()),
        ):
            missing = [c for c in cols if c not in names]
            if missing:
                raise ValueError(f"{self.name}: {what} column(s) {missing} not in schema")
        if bool(self.key) == bool(self.unkeyed):
            raise ValueError(f"{self.name}: declare either key columns or why it has none")


@dataclass
class WriteResult:
    table: str
    version: int
    rows_written: int = 0
    files_added: int = 0
    files_removed: int = 0
    rows_deleted: int = 0
    # Rows of the caller's frame written (rows_written also counts rows of other
    # entities rewritten alongside them in the same files). None when unknown.
    rows_inserted: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def local_file_path(uri: str) -> str:
    """A local path for `file:/x`, `file:///x` or `/x` URIs (percent-escapes decoded);
    engines spell the same file differently (delta-spark: `file:/x`, delta-rs: `/x`)."""
    if uri.startswith("file:"):
        return os.path.normpath(unquote(urlparse(uri).path))
    return os.path.normpath(uri)


def has_map(dt: T.DataType) -> bool:
    """True when a type holds a map anywhere (maps cannot be compared or joined on)."""
    if isinstance(dt, T.MapType):
        return True
    if isinstance(dt, T.StructType):
        return any(has_map(f.dataType) for f in dt.fields)
    if isinstance(dt, T.ArrayType):
        return has_map(dt.elementType)
    return False


def validate_table_name(name: str) -> None:
    if not _TABLE_NAME.match(name):
        raise ValueError(f"table name {name!r}: expected 'layer.table' in lower snake_case")


def _simple(dt: T.DataType) -> str:
    return dt.simpleString()


def schema_differences(table: T.StructType, incoming: T.StructType) -> list[str]:
    """Human-readable differences by column name and type (nullability ignored)."""
    have = {f.name: f.dataType for f in table.fields}
    got = {f.name: f.dataType for f in incoming.fields}
    diffs = [f"missing column {n} ({_simple(t)})" for n, t in have.items() if n not in got]
    diffs += [f"unexpected column {n} ({_simple(t)})" for n, t in got.items() if n not in have]
    diffs += [
        f"column {n}: table has {_simple(have[n])}, data has {_simple(got[n])}"
        for n in have
        if n in got and _strip_nullability(have[n]) != _strip_nullability(got[n])
    ]
    return diffs


def struct_grows(old: T.DataType, new: T.DataType) -> bool:
    """`new` is `old` with struct fields added (at any depth, inside arrays and maps too)
    and nothing removed or retyped: what a grown taxonomy does to silver's properties."""
    old, new = _strip_nullability(old), _strip_nullability(new)
    if old == new:
        return False
    return _extends(old, new)


def _extends(old: T.DataType, new: T.DataType) -> bool:
    if old == new:
        return True
    if isinstance(old, T.StructType) and isinstance(new, T.StructType):
        have = {f.name: f.dataType for f in old.fields}
        got = {f.name: f.dataType for f in new.fields}
        return set(have) <= set(got) and all(_extends(have[n], got[n]) for n in have)
    if isinstance(old, T.ArrayType) and isinstance(new, T.ArrayType):
        return _extends(old.elementType, new.elementType)
    if isinstance(old, T.MapType) and isinstance(new, T.MapType):
        return old.keyType == new.keyType and _extends(old.valueType, new.valueType)
    return False


def _strip_nullability(dt: T.DataType) -> T.DataType:
    if isinstance(dt, T.StructType):
        return T.StructType(
            [T.StructField(f.name, _strip_nullability(f.dataType), True) for f in dt.fields]
        )
    if isinstance(dt, T.ArrayType):
        return T.ArrayType(_strip_nullability(dt.elementType), True)
    if isinstance(dt, T.MapType):
        return T.MapType(_strip_nullability(dt.keyType), _strip_nullability(dt.valueType), True)
    return dt


def conform(
    df: DataFrame, table_schema: T.StructType, table: str, evolve: bool
) -> tuple[DataFrame, list[T.StructField]]:
    """Order and check `df` against the table schema.

    Returns the conformed frame and the new fields to add to the table (evolve only).
    """
    diffs = schema_differences(table_schema, df.schema)
    if diffs and not evolve:
        raise SchemaMismatchError(
            f"write to {table} does not match its schema: "
            + "; ".join(diffs)
            + " (pass evolve=True to add new columns)"
        )
    have = {f.name for f in table_schema.fields}
    got = {f.name: f.dataType for f in df.schema.fields}
    grown = {f.name for f in table_schema.fields
             if f.name in got and struct_grows(f.dataType, got[f.name])}  # fmt: skip
    type_changes = [
        d for d in diffs if d.startswith("column ") and d.split(":")[0][7:] not in grown
    ]
    if type_changes:
        raise SchemaMismatchError(
            f"write to {table}: type changes are never evolved: " + "; ".join(type_changes)
        )
    new_fields = [
        T.StructField(f.name, f.dataType, True) for f in df.schema.fields if f.name not in have
    ]
    cols = [
        F.col(f"`{f.name}`") if f.name in df.columns else F.lit(None).cast(f.dataType).alias(f.name)
        for f in table_schema.fields
    ] + [F.col(f"`{f.name}`") for f in new_fields]
    return df.select(*cols), new_fields


class Lake(ABC):
    """Read, write and maintain Delta tables, whatever the engine."""

    engine: str = "abstract"

    def __init__(
        self,
        spark: SparkSession,
        root: str,
        specs: Mapping[str, TableSpec] | None = None,
    ) -> None:
        self.spark = spark
        self.root = root.rstrip("/")
        self._specs: Mapping[str, TableSpec] = MappingProxyType(dict(specs or {}))

    @property
    def specs(self) -> Mapping[str, TableSpec]:
        """The catalog this Lake was opened with (read-only)."""
        return self._specs

    # ------------------------------------------------------------------ naming
    def table_name(self, table: str) -> str | None:
        """The table's name in a catalog, or None: addressed by path (the default)."""
        return None

    def path(self, table: str) -> str:
        validate_table_name(table)
        layer, name = table.split(".")
        return f"{self.root}/{layer}/{name}"

    def spec(self, table: str) -> TableSpec | None:
        return self.specs.get(table)

    def declared(self, table: str, expected: TableSpec | None = None) -> TableSpec:
        """The catalog's spec of `table`; with `expected`, also check the catalog was
        resolved from the same configuration (taxonomy, feature settings)."""
        spec = self.specs.get(table)
        if spec is None:
            raise TableNotFoundError(
                f"table {table} is not in this Lake's catalog: open the Lake with "
                "behavior_lake.catalog.open_lake (or pass catalog.resolve(settings))"
            )
        if expected is not None and spec != expected:
            raise LakeError(
                f"table {table}: this Lake's catalog was resolved from another configuration "
                "than the job's (taxonomy or feature settings): "
                + "; ".join(schema_differences(spec.schema, expected.schema) or ["same schema"])
            )
        return spec

    def conformed(self, table: str, df: DataFrame, evolve: bool) -> tuple[DataFrame, bool]:
        """`df` ordered and checked against the table (one schema read), and whether the
        write adds columns: when asked (`evolve`), or when the new columns are ones the
        table's spec declares and an older table lacks (the contract grew: a lake built
        before keeps working without a migration step)."""
        schema = self.schema(table)
        evolve = evolve or self.spec_grows(table, df, schema)
        out, _ = conform(df, schema, table, evolve)
        return out, evolve

    def spec_grows(self, table: str, df: DataFrame, schema: T.StructType) -> bool:
        """`df` brings columns the table (`schema`) lacks, all declared by its spec."""
        spec = self.specs.get(table)
        if spec is None:
            return False
        have = {f.name: f.dataType for f in schema.fields}
        declared = {f.name: f.dataType for f in spec.schema.fields}
        extra = [c for c in df.columns if c not in have]
        grown = [f.name for f in df.schema.fields
                 if f.name in have and struct_grows(have[f.name], f.dataType)]  # fmt: skip
        if not extra and not grown:
            return False
        # every new column, and every grown struct, is what the spec declares now
        return all(c in declared for c in extra) and all(
            c in declared and _strip_nullability(declared[c]) == _strip_nullability(
                df.schema[c].dataType) for c in grown
        )  # fmt: skip

    def ensure(self, table: str) -> None:
        """Create a declared table if it does not exist yet."""
        if self.exists(table):
            return
        spec = self.specs.get(table)
        if spec is None:
            raise TableNotFoundError(
                f"table {table} does not exist at {self.path(table)} and has no declared "
                "TableSpec to create it from"
            )
        self.create(spec)

    # ------------------------------------------------------------------ engine ops
    @abstractmethod
    def exists(self, table: str) -> bool: ...

    @abstractmethod
    def create(self, spec: TableSpec) -> None:
        """Create the table (no-op when it exists with the same schema)."""

    @abstractmethod
    def schema(self, table: str) -> T.StructType: ...

    @abstractmethod
    def partition_columns(self, table: str) -> list[str]: ...

    @abstractmethod
    def read(self, table: str, version: int | None = None) -> DataFrame: ...

    @abstractmethod
    def append(self, table: str, df: DataFrame, *, evolve: bool = False) -> WriteResult: ...

    @abstractmethod
    def overwrite(
        self, table: str, df: DataFrame, *, where: Where | None = None, evolve: bool = False
    ) -> WriteResult:
        """Replace the whole table, or only the rows matching `where` (replaceWhere).

        With `where`, every incoming row must satisfy it.
        """

    @abstractmethod
    def merge(
        self,
        table: str,
        df: DataFrame,
        keys: Sequence[str],
        *,
        update_existing: bool = True,
        evolve: bool = False,
    ) -> WriteResult:
        """Upsert on `keys`: matched rows are replaced (or kept when update_existing is
        False), unmatched rows inserted. Source rows must be unique on `keys`."""

    @abstractmethod
    def replace_keys(
        self, table: str, df: DataFrame, key: str, keys: DataFrame, *, evolve: bool = False
    ) -> WriteResult:
        """Replace every row whose `key` is in `keys` (a one-column frame) by `df`.

        Rows of `df` must all have their key in `keys`. Used to recompute a set of
        entities (e.g. persons) without naming them in a SQL predicate."""

    @abstractmethod
    def delete(self, table: str, where: Where | Column) -> WriteResult:
        """Delete the rows matching a `Where` or a Column (e.g. built from functions that
        have no SQL text, like the pseudonym HMAC). A `Where` on partition columns only
        drops whole files without a scan. A Column's literals never reach the
        transaction log (erasure relies on it); a `Where`'s may."""

    @abstractmethod
    def vacuum(self, table: str, retention_hours: float | None = None) -> list[str]:
        """Delete files no longer referenced and older than the retention; returns them."""

    def purge(self, table: str) -> dict[str, Any]:
        """Rewrite the files whose rows are only marked deleted (deletion vectors), so the
        next vacuum removes the deleted rows from disk. Nothing to do on engines that
        delete by rewriting files."""
        return {}

    @abstractmethod
    def history(self, table: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Commits, newest first; each has at least `version` and `operation`."""

    @abstractmethod
    def version(self, table: str) -> int: ...

    @abstractmethod
    def restore(self, table: str, version: int) -> None: ...

    @abstractmethod
    def optimize(self, table: str, zorder_by: Sequence[str] | None = None) -> dict[str, Any]: ...

    @abstractmethod
    def active_files(self, table: str) -> list[str]:
        """Absolute paths/URIs of the data files of the current version."""

    # ------------------------------------------------------------------ helpers
    def _check_where(self, df: DataFrame, where: Where, table: str) -> None:
        """Every row written by overwrite(where=...) must satisfy the predicate."""
        bad = df.filter(~F.coalesce(where.column(), F.lit(False))).limit(1).count()
        if bad:
            raise LakeError(
                f"overwrite of {table} where {where}: some incoming rows do not satisfy "
                "the predicate (they would be written outside the replaced range)"
            )

    def _check_unique_keys(self, df: DataFrame, keys: Sequence[str], table: str) -> None:
        dup = df.groupBy(*keys).count().filter(F.col("count") > 1).limit(1).collect()
        if dup:
            raise LakeError(
                f"merge into {table}: source rows are not unique on {list(keys)} "
                f"(e.g. {dup[0].asDict()})"
            )


def spec_rows(
    spark: SparkSession, spec: TableSpec, rows: list[tuple], stamp: str | None = None
) -> DataFrame:
    """A frame of `rows` (tuples in the spec's column order, `stamp` left out) typed by the
    spec; the `stamp` column, when given, is filled with the current timestamp."""
    fields = [f for f in spec.schema.fields if f.name != stamp]
    schema = T.StructType([T.StructField(f.name, f.dataType, True) for f in fields])
    df = spark.createDataFrame(rows, schema)
    if stamp:
        df = df.withColumn(stamp, F.current_timestamp())
    return df.select(*spec.schema.fieldNames())


CLUSTER_COLUMN = "person_id"


def rebalanced_for_write(
    df: DataFrame, partition_by: Sequence[str], cluster_by: str | None = CLUSTER_COLUMN
) -> DataFrame:
    """Lay a partitioned table's rows out for the write: few, large files per partition
    value, each holding a contiguous range of `cluster_by` (the spec's clustering column).

    Range partitioning on (partition, cluster column) gives each write task a contiguous
    slice of days and persons, so a day is one file until it is split at a task boundary
    (files <= days + tasks - 1); adaptive execution coalesces the ranges of small writes,
    and rows are sorted by the same keys within each task. Method and figures:
    docs/engines.md. Tables without the clustering column are rebalanced by partition
    value only; unpartitioned tables are written as they come.
    """
    if not partition_by:
        return df
    # Without adaptive execution nothing sizes or coalesces the write tasks: leave such
    # writes as they come.
    if df.sparkSession.conf.get("spark.sql.adaptive.enabled", "true").lower() != "true":
        return df
    if not cluster_by or cluster_by not in df.columns or cluster_by in partition_by:
        return df.hint("rebalance", *partition_by)
    keys = [*partition_by, cluster_by]
    return df.repartitionByRange(*keys).sortWithinPartitions(*keys)


def empty_frame(spark: SparkSession, schema: T.StructType) -> DataFrame:
    return spark.createDataFrame([], schema)
