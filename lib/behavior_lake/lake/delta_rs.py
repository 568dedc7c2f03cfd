"""Embedded Delta engine: delta-rs owns the transaction log, Spark moves the data.

Writes: Spark executors write parquet into `<table>/_staging/<id>/`; the driver moves
the files into their partition folders and commits Add (and Remove) actions in ONE
delta-rs transaction. Overwrite-where, merge and delete are file-level rewrites
planned in Spark (which files hold matching rows), so no table ever passes through
the driver. Reads: Spark's parquet reader over the version's active files, with the
schema from the Delta log. Local (or mounted) file systems and S3 APIs (`lake/files.py`:
Spark writes and reads `s3a://`, delta-rs commits to `s3://` with S3's conditional
writes, staged files are moved by server-side copy before the commit).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import unquote, urlparse

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable
from deltalake import Schema as DeltaSchema
from deltalake.transaction import AddAction, RemoveAction
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from behavior_lake.lake.base import (
    CLUSTER_COLUMN,
    Lake,
    LakeError,
    SchemaMismatchError,
    TableNotFoundError,
    TableSpec,
    WriteResult,
    empty_frame,
    rebalanced_for_write,
    schema_differences,
    struct_grows,
)
from behavior_lake.lake.files import (
    Files,
    delta_rs_uri,
    files_for,
    is_object_store,
    s3_storage_options,
    spark_uri,
)
from behavior_lake.lake.where import Where

log = logging.getLogger(__name__)

_FILE_COL = "__bl_file"
# Reader features the file-list reads below cannot honour.
UNSUPPORTED_READER_FEATURES = frozenset({"deletionVectors"})
_HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"


def _local_path(uri: str) -> str:
    if uri.startswith("file:"):
        return unquote(urlparse(uri).path)
    if "://" in uri:
        raise LakeError(
            f"the delta-rs engine writes local paths and S3 (s3://, s3a://) only, got "
            f"{uri!r}: set lake.engine: delta-spark for other object stores"
        )
    return os.path.abspath(uri)


def to_spark_schema(schema: DeltaSchema) -> T.StructType:
    # Delta's schema serialization is Spark's StructType JSON.
    return T.StructType.fromJson(json.loads(schema.to_json()))


def to_delta_schema(schema: T.StructType) -> DeltaSchema:
    return DeltaSchema.from_json(schema.json())


class DeltaRsLake(Lake):
    engine = "delta-rs"

    # ------------------------------------------------------------------ metadata
    @cached_property
    def _remote(self) -> bool:
        return is_object_store(self.root)

    @cached_property
    def _options(self) -> dict[str, str] | None:
        return s3_storage_options(self.spark) if self._remote else None

    @cached_property
    def _files(self) -> Files:
        return files_for(self.root, self.spark)

    def path(self, table: str) -> str:
        """Where Spark finds the table: a local path, or `s3a://...` on S3."""
        if self._remote:
            return spark_uri(super().path(table))
        return _local_path(super().path(table))

    def _uri(self, table: str) -> str:
        """Where delta-rs finds the table (`s3://...` on S3)."""
        return delta_rs_uri(self.path(table))

    def _open(self, table: str, version: int | None = None) -> DeltaTable:
        return DeltaTable(self._uri(table), version=version, storage_options=self._options)

    def _is_table(self, table: str) -> bool:
        return DeltaTable.is_deltatable(self._uri(table), storage_options=self._options)

    def _table(self, table: str, version: int | None = None) -> DeltaTable:
        path = self.path(table)
        if not self._is_table(table):
            self.ensure(table)
        dt = self._open(table, version)
        unsupported = set(dt.protocol().reader_features or ()) & UNSUPPORTED_READER_FEATURES
        if unsupported:
            # Reading the file list would bring rows back that the vectors mark deleted.
            raise LakeError(
                f"{table} uses {sorted(unsupported)} (written by delta-spark with "
                "lake.deletion_vectors on), which the delta-rs engine cannot apply: use "
                "lake.engine: delta-spark for this lake, or on delta-spark run "
                f"`ALTER TABLE delta.`{path}` DROP FEATURE deletionVectors`"
            )
        return dt

    def exists(self, table: str) -> bool:
        return self._is_table(table)

    def create(self, spec: TableSpec) -> None:
        path = self.path(spec.name)
        if self._is_table(spec.name):
            diffs = schema_differences(self.schema(spec.name), spec.schema)
            if diffs:
                raise SchemaMismatchError(f"{spec.name} exists with another schema: {diffs}")
            return
        if not self._remote:
            os.makedirs(path, exist_ok=True)
        DeltaTable.create(
            self._uri(spec.name),
            schema=to_delta_schema(spec.schema),
            partition_by=list(spec.partition_by) or None,
            name=spec.name,
            description=spec.grain or spec.description or None,
            mode="ignore",
            storage_options=self._options,
        )
        log.info("created table %s at %s (partitioned by %s)", spec.name, path, spec.partition_by)

    def schema(self, table: str) -> T.StructType:
        return to_spark_schema(self._table(table).schema())

    def partition_columns(self, table: str) -> list[str]:
        return list(self._table(table).metadata().partition_columns)

    def version(self, table: str) -> int:
        return self._table(table).version()

    def active_files(self, table: str) -> list[str]:
        return self._file_uris(self._table(table))

    def _file_uris(self, dt: DeltaTable) -> list[str]:
        """The active files as Spark reads them (`s3a://` on S3)."""
        return [spark_uri(u) for u in dt.file_uris()]

    # ------------------------------------------------------------------ reads
    def read(self, table: str, version: int | None = None) -> DataFrame:
        if not self.exists(table):
            raise TableNotFoundError(f"table {table} does not exist at {self.path(table)}")
        dt = self._table(table, version)
        return self._scan(table, dt, self._file_uris(dt))

    def _scan(self, table: str, dt: DeltaTable, files: list[str]) -> DataFrame:
        schema = to_spark_schema(dt.schema())
        if not files:
            return empty_frame(self.spark, schema)
        return (
            self.spark.read.schema(schema)
            .option("basePath", self.path(table))
            .parquet(*files)
            .select(*[F.col(f"`{c}`") for c in schema.fieldNames()])
        )

    def _scan_with_file(self, table: str, dt: DeltaTable, files: list[str]) -> DataFrame:
        df = self._scan(table, dt, files)
        if not files:
            return df.withColumn(_FILE_COL, F.lit(None).cast("string"))
        return df.withColumn(_FILE_COL, F.col("_metadata.file_path"))

    # ------------------------------------------------------------------ writes
    def append(self, table: str, df: DataFrame, *, evolve: bool = False) -> WriteResult:
        dt = self._prepare(table, df, evolve)
        df, evolve = self.conformed(table, df, evolve)
        adds = self._write_files(table, dt, df)
        return self._commit(table, dt, adds, [], "append")

    def overwrite(
        self, table: str, df: DataFrame, *, where: Where | None = None, evolve: bool = False
    ) -> WriteResult:
        dt = self._prepare(table, df, evolve)
        df, evolve = self.conformed(table, df, evolve)
        if where is None:
            adds = self._write_files(table, dt, df)
            removes = [self._remove(a) for a in self._add_rows(dt)]
            return self._commit(table, dt, adds, removes, "overwrite")
        self._check_where(df, where, table)
        plan = self._plan_rewrite(table, dt, where)
        kept = plan.kept
        new = df if kept is None else kept.unionByName(df)
        adds = self._write_files(table, dt, new)
        result = self._commit(table, dt, adds, plan.removes, f"overwrite where {where}")
        result.rows_deleted = plan.rows_matched
        result.rows_inserted = result.rows_written - plan.kept_rows
        return result

    def merge(
        self,
        table: str,
        df: DataFrame,
        keys: Sequence[str],
        *,
        update_existing: bool = True,
        evolve: bool = False,
    ) -> WriteResult:
        keys = list(keys)
        dt = self._prepare(table, df, evolve)
        df, evolve = self.conformed(table, df, evolve)
        self._check_unique_keys(df, keys, table)
        files = self._file_uris(dt)
        target = self._scan_with_file(table, dt, files)
        src_keys = df.select(*keys).distinct()
        if not update_existing:
            new = df.join(target.select(*keys), on=keys, how="left_anti")
            adds = self._write_files(table, dt, new)
            return self._commit(table, dt, adds, [], "merge (insert new keys)")
        hit_files = {
            r[_FILE_COL]
            for r in target.join(src_keys, on=keys, how="left_semi")
            .select(_FILE_COL)
            .distinct()
            .collect()
        }
        by_rel = {a["path"]: a for a in self._add_rows(dt)}
        hit_rel = [self._relative(table, f) for f in hit_files]
        kept_files = [f"{self.path(table)}/{r}" for r in hit_rel]
        new = df
        if kept_files:
            kept = self._scan(table, dt, kept_files).join(src_keys, on=keys, how="left_anti")
            new = kept.unionByName(df)
        adds = self._write_files(table, dt, new)
        removes = [self._remove(by_rel[r]) for r in hit_rel]
        return self._commit(table, dt, adds, removes, "merge")

    def replace_keys(
        self, table: str, df: DataFrame, key: str, keys: DataFrame, *, evolve: bool = False
    ) -> WriteResult:
        dt = self._prepare(table, df, evolve)
        df, evolve = self.conformed(table, df, evolve)
        keyset = keys.select(F.col(key)).distinct()
        target = self._scan_with_file(table, dt, self._file_uris(dt))
        flagged = target.join(keyset.withColumn("_hit", F.lit(1)), on=key, how="left")
        per_file = (
            flagged.groupBy(_FILE_COL)
            .agg(
                F.sum(F.coalesce(F.col("_hit"), F.lit(0))).alias("hit"),
                F.count(F.lit(1)).alias("n"),
            )
            .filter(F.col("hit") > 0)
            .collect()
        )
        by_rel = {a["path"]: a for a in self._add_rows(dt)}
        hit_rel = [self._relative(table, r[_FILE_COL]) for r in per_file]
        removed_rows = sum(int(r["hit"]) for r in per_file)
        kept_rows = sum(int(r["n"]) - int(r["hit"]) for r in per_file)
        new = df
        if hit_rel:
            files = [f"{self.path(table)}/{r}" for r in hit_rel]
            kept = self._scan(table, dt, files).join(keyset, on=key, how="left_anti")
            new = kept.unionByName(df)
        adds = self._write_files(table, dt, new)
        removes = [self._remove(by_rel[r]) for r in hit_rel]
        result = self._commit(table, dt, adds, removes, f"replace keys on {key}")
        result.rows_deleted = removed_rows
        result.rows_inserted = result.rows_written - kept_rows
        return result

    def delete(self, table: str, where: Where | Column) -> WriteResult:
        dt = self._table(table)
        plan = self._plan_rewrite(table, dt, where)
        # The survivors of already laid-out files: rewritten in place, no rebalance shuffle.
        kept = plan.kept
        adds = self._write_files(table, dt, kept, rebalance=False) if kept is not None else []
        if not plan.removes:
            return WriteResult(table=table, version=dt.version())
        label = str(where) if isinstance(where, Where) else "<column predicate>"
        result = self._commit(table, dt, adds, plan.removes, f"delete where {label}")
        result.rows_deleted = plan.rows_matched
        result.extra["metadata_only"] = plan.metadata_only
        return result

    # ------------------------------------------------------------------ maintenance
    def vacuum(self, table: str, retention_hours: float | None = None) -> list[str]:
        dt = self._table(table)
        # whole hours only in delta-rs: round up, so nothing younger than asked is removed
        hours = math.ceil(retention_hours) if retention_hours is not None else None
        # delta-rs lists every expired tombstone, also those whose file is already gone
        # (an earlier vacuum): report only the files this call really deletes
        root = self.path(table)
        candidates = dt.vacuum(
            retention_hours=hours, dry_run=True, enforce_retention_duration=False, full=True
        )
        present = {c for c in candidates if self._files.exists(self._candidate_path(root, c))}
        dt.vacuum(retention_hours=hours, dry_run=False, enforce_retention_duration=False, full=True)
        removed = sorted(present)
        self._clean_staging(table, hours if hours is not None else 168)
        log.info("vacuum %s: %d file(s) removed", table, len(removed))
        return list(removed)

    @staticmethod
    def _candidate_path(root: str, candidate: str) -> str:
        if "://" in candidate:
            return spark_uri(candidate)
        return candidate if os.path.isabs(candidate) else f"{root}/{candidate}"

    def history(self, table: str, limit: int | None = None) -> list[dict[str, Any]]:
        out = []
        for h in self._table(table).history(limit):
            entry = dict(h)
            if entry.get("userMetadata"):
                entry["operation"] = entry["userMetadata"]
            out.append(entry)
        return out

    def restore(self, table: str, version: int) -> None:
        self._table(table).restore(version)

    def optimize(self, table: str, zorder_by: Sequence[str] | None = None) -> dict[str, Any]:
        dt = self._table(table)
        if zorder_by:
            return dict(dt.optimize.z_order(list(zorder_by)))
        return dict(dt.optimize.compact())

    # ------------------------------------------------------------------ internals
    def _prepare(self, table: str, df: DataFrame, evolve: bool) -> DeltaTable:
        dt = self._table(table)
        current = to_spark_schema(dt.schema())
        have = set(current.fieldNames())
        new_fields = [f for f in df.schema.fields if f.name not in have]
        evolve = evolve or self.spec_grows(table, df, current)
        grown = [f for f in df.schema.fields
                 if f.name in have and struct_grows(current[f.name].dataType, f.dataType)]  # fmt: skip
        if evolve and grown:
            self._grow_structs(table, dt, current, grown)
            dt = self._table(table)
            current = to_spark_schema(dt.schema())
        if (
            evolve
            and new_fields
            and not [d for d in schema_differences(current, df.schema) if d.startswith("column ")]
        ):
            nullable = T.StructType([T.StructField(f.name, f.dataType, True) for f in new_fields])
            dt.alter.add_columns(list(to_delta_schema(nullable).fields))
            log.info("%s: schema evolved, added %s", table, [f.name for f in new_fields])
            dt = self._table(table)
        return dt

    def _grow_structs(self, table: str, dt: DeltaTable, current: T.StructType, grown) -> None:
        """Add nested struct fields to the table schema: a metadata-only commit (an
        empty append with schema merge; alter.add_columns adds top-level columns only)."""
        from deltalake import write_deltalake

        types = {f.name: f.dataType for f in grown}
        merged = T.StructType(
            [T.StructField(f.name, types.get(f.name, f.dataType), True) for f in current.fields]
        )
        empty = pa.schema(to_delta_schema(merged).to_arrow()).empty_table()
        write_deltalake(
            self._uri(table), empty, mode="append", schema_mode="merge",
            partition_by=list(dt.metadata().partition_columns) or None,
            storage_options=self._options,
        )  # fmt: skip
        log.info("%s: schema evolved, grew struct column(s) %s", table, sorted(types))

    def _write_files(
        self, table: str, dt: DeltaTable, df: DataFrame, *, rebalance: bool = True
    ) -> list[AddAction]:
        """Executor-side parquet write into staging, then move files into the table."""
        root = self.path(table)
        parts = list(dt.metadata().partition_columns)
        stage = f"{root}/_staging/{uuid.uuid4().hex}"
        if rebalance:
            spec = self.spec(table)
            df = rebalanced_for_write(df, parts, spec.cluster_by if spec else CLUSTER_COLUMN)
        writer = df.write.mode("overwrite").option("compression", "snappy")
        if parts:
            writer = writer.partitionBy(*parts)
        writer.parquet(stage)
        adds: list[AddAction] = []
        now_ms = int(time.time() * 1000)
        files = self._files
        for src, size in files.parquet_files(stage):
            rel = src[len(stage) + 1 :]
            rows = files.num_rows(src)
            if rows == 0:
                continue
            files.move(src, f"{root}/{rel}")
            adds.append(
                AddAction(
                    path=rel,
                    size=size,
                    partition_values=self._partition_values(rel, parts),
                    modification_time=now_ms,
                    data_change=True,
                    stats=json.dumps({"numRecords": rows}),
                )
            )
        files.remove_tree(stage)
        return adds

    @staticmethod
    def _partition_values(rel: str, parts: list[str]) -> dict[str, str | None]:
        values: dict[str, str | None] = {}
        for segment in rel.split("/")[:-1]:
            key, _, raw = segment.partition("=")
            if key in parts:
                value = unquote(raw)
                values[key] = None if value == _HIVE_NULL else value
        return {p: values.get(p) for p in parts}

    def _commit(
        self,
        table: str,
        dt: DeltaTable,
        adds: list[AddAction],
        removes: list[RemoveAction],
        operation: str,
    ) -> WriteResult:
        rows = sum(json.loads(a.stats)["numRecords"] for a in adds)
        if not adds and not removes:
            return WriteResult(table=table, version=dt.version())
        dt.create_write_transaction(
            [*adds, *removes],
            mode="append",
            schema=dt.schema(),
            partition_by=list(dt.metadata().partition_columns) or None,
            commit_properties=CommitProperties(custom_metadata={"userMetadata": operation}),
        )
        version = self._open(table).version()
        log.info(
            "%s %s: +%d file(s) (%d rows), -%d file(s) -> version %d",
            operation,
            table,
            len(adds),
            rows,
            len(removes),
            version,
        )
        return WriteResult(
            table=table,
            version=version,
            rows_written=rows,
            files_added=len(adds),
            files_removed=len(removes),
        )

    @staticmethod
    def _add_rows(dt: DeltaTable) -> list[dict[str, Any]]:
        """The current add actions as small dicts (one per file, metadata only)."""
        table = pa.table(dt.get_add_actions(flatten=False))
        out = []
        for row in table.to_pylist():
            out.append(
                {
                    "path": unquote(row["path"]),
                    "size": int(row["size_bytes"]),
                    "num_records": row.get("num_records"),
                    "partition": row.get("partition"),
                }
            )
        return out

    def _remove(self, add: dict[str, Any]) -> RemoveAction:
        part = add.get("partition") or None
        return RemoveAction(
            path=add["path"],
            data_change=True,
            deletion_timestamp=int(time.time() * 1000),
            size=add["size"],
            partition_values=(
                {k: (None if v is None else _partition_str(v)) for k, v in part.items()}
                if part
                else None
            ),
        )

    def _relative(self, table: str, uri: str) -> str:
        """A file's path inside its table, from a URI Spark or delta-rs gave."""
        if not self._remote:
            return os.path.relpath(_local_path(uri), self.path(table))
        full, root = unquote(spark_uri(uri)), self.path(table) + "/"
        if not full.startswith(root):
            raise LakeError(f"{uri} is not a file of {table} ({root})")
        return full[len(root) :]

    def _plan_rewrite(self, table: str, dt: DeltaTable, where: Where | Column) -> _RewritePlan:
        """Which files hold rows matching `where`, and the rows of them to keep."""
        adds = self._add_rows(dt)
        parts = list(dt.metadata().partition_columns)
        schema = to_spark_schema(dt.schema())
        if not adds:
            return _RewritePlan([], None, 0, True)
        cond = where.column() if isinstance(where, Where) else where
        if isinstance(where, Where) and parts and where.columns <= set(parts):
            meta = self._partition_frame(adds, parts, schema)
            hits = meta.filter(F.coalesce(cond, F.lit(False)))
            hit_paths = {r["path"] for r in hits.select("path").collect()}
            chosen = [a for a in adds if a["path"] in hit_paths]
            if all(a["num_records"] is not None for a in chosen):
                rows = sum(int(a["num_records"]) for a in chosen)
                return _RewritePlan([self._remove(a) for a in chosen], None, rows, True)
        target = self._scan_with_file(table, dt, self._file_uris(dt))
        match = F.coalesce(cond, F.lit(False))
        per_file = (
            target.groupBy(_FILE_COL)
            .agg(F.sum(match.cast("long")).alias("hit"), F.count(F.lit(1)).alias("n"))
            .filter(F.col("hit") > 0)
            .collect()
        )
        by_rel = {a["path"]: a for a in adds}
        removes, partial, rows, kept_rows = [], [], 0, 0
        for r in per_file:
            rel = self._relative(table, r[_FILE_COL])
            removes.append(self._remove(by_rel[rel]))
            rows += int(r["hit"])
            if r["hit"] < r["n"]:
                partial.append(f"{self.path(table)}/{rel}")
                kept_rows += int(r["n"]) - int(r["hit"])
        kept = self._scan(table, dt, partial).filter(~match) if partial else None
        return _RewritePlan(removes, kept, rows, False, kept_rows)

    def _partition_frame(
        self, adds: list[dict[str, Any]], parts: list[str], schema: T.StructType
    ) -> DataFrame:
        fields = [T.StructField("path", T.StringType())] + [
            T.StructField(p, schema[p].dataType) for p in parts
        ]
        rows = [[a["path"], *[(a["partition"] or {}).get(p) for p in parts]] for a in adds]
        return self.spark.createDataFrame(rows, T.StructType(fields))

    def _clean_staging(self, table: str, older_than_hours: float) -> None:
        stage_root = f"{self.path(table)}/_staging"
        cutoff = time.time() - older_than_hours * 3600
        for folder in self._files.subfolders_older_than(stage_root, cutoff):
            self._files.remove_tree(folder)


@dataclass
class _RewritePlan:
    removes: list[RemoveAction]
    kept: DataFrame | None  # rows of partially matched files that stay
    rows_matched: int
    metadata_only: bool
    kept_rows: int = 0


def _partition_str(value: Any) -> str:
    if hasattr(value, "isoformat") and not isinstance(value, str):
        return value.isoformat()
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
