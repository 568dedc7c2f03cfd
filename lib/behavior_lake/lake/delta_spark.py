"""Cluster Delta engine: the Delta JVM library (DeltaTable API, distributed DML)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from behavior_lake.lake.base import (
    Lake,
    SchemaMismatchError,
    TableNotFoundError,
    TableSpec,
    WriteResult,
    conform,
    rebalanced_for_write,
    schema_differences,
)

log = logging.getLogger(__name__)

# Table features both engines can write (see README "Engines"): no deletion vectors,
# row tracking, clustering or in-commit timestamps.
_PORTABLE_PROPERTIES = {
    "delta.enableDeletionVectors": "false",
    "delta.enableRowTracking": "false",
}


class DeltaSparkLake(Lake):
    engine = "delta-spark"

    def _dt(self, table: str) -> Any:
        from delta.tables import DeltaTable

        if not self.exists(table):
            self.ensure(table)
        return DeltaTable.forPath(self.spark, self.path(table))

    def exists(self, table: str) -> bool:
        from delta.tables import DeltaTable

        return bool(DeltaTable.isDeltaTable(self.spark, self.path(table)))

    def create(self, spec: TableSpec) -> None:
        from delta.tables import DeltaTable

        if self.exists(spec.name):
            diffs = schema_differences(self.schema(spec.name), spec.schema)
            if diffs:
                raise SchemaMismatchError(f"{spec.name} exists with another schema: {diffs}")
            return
        builder = DeltaTable.createIfNotExists(self.spark).location(self.path(spec.name))
        builder = builder.addColumns(spec.schema)
        if spec.partition_by:
            builder = builder.partitionedBy(*spec.partition_by)
        for key, value in _PORTABLE_PROPERTIES.items():
            builder = builder.property(key, value)
        if spec.grain:
            builder = builder.comment(spec.grain)
        builder.execute()
        log.info("created table %s at %s", spec.name, self.path(spec.name))

    def schema(self, table: str) -> T.StructType:
        return self.read(table).schema

    def partition_columns(self, table: str) -> list[str]:
        detail = self._dt(table).detail().select("partitionColumns").first()
        return list(detail[0]) if detail else []

    def version(self, table: str) -> int:
        return int(self._dt(table).history(1).select("version").first()[0])

    def active_files(self, table: str) -> list[str]:
        return list(self.read(table).inputFiles())

    def read(self, table: str, version: int | None = None) -> DataFrame:
        if not self.exists(table):
            raise TableNotFoundError(f"table {table} does not exist at {self.path(table)}")
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.load(self.path(table))

    def _write(self, table: str, df: DataFrame, mode: str, evolve: bool, **options: str):
        self.ensure(table)
        df, _ = conform(df, self.schema(table), table, evolve)
        # A declared table's partitioning is in its spec: no DESCRIBE DETAIL per write.
        spec = self.spec(table)
        parts = spec.partition_by if spec else self.partition_columns(table)
        df = rebalanced_for_write(df, parts)
        writer = df.write.format("delta").mode(mode)
        if evolve:
            writer = writer.option("mergeSchema", "true")
        for key, value in options.items():
            writer = writer.option(key, value)
        writer.save(self.path(table))
        return self._result(table)

    def append(self, table: str, df: DataFrame, *, evolve: bool = False) -> WriteResult:
        return self._write(table, df, "append", evolve)

    def overwrite(
        self, table: str, df: DataFrame, *, where: str | None = None, evolve: bool = False
    ) -> WriteResult:
        if where is None:
            return self._write(table, df, "overwrite", evolve)
        return self._write(table, df, "overwrite", evolve, replaceWhere=where)

    def merge(
        self,
        table: str,
        df: DataFrame,
        keys: Sequence[str],
        *,
        update_existing: bool = True,
        evolve: bool = False,
    ) -> WriteResult:
        self.ensure(table)
        df, _ = conform(df, self.schema(table), table, evolve)
        self._check_unique_keys(df, keys, table)
        cond = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
        builder = self._dt(table).alias("t").merge(df.alias("s"), cond)
        if update_existing:
            builder = builder.whenMatchedUpdateAll()
        builder.whenNotMatchedInsertAll().execute()
        return self._result(table)

    def replace_keys(
        self, table: str, df: DataFrame, key: str, keys: DataFrame, *, evolve: bool = False
    ) -> WriteResult:
        # Two commits on this engine: MERGE ... WHEN MATCHED DELETE, then an append.
        self.ensure(table)
        df, _ = conform(df, self.schema(table), table, evolve)
        keyset = keys.select(F.col(key)).distinct()
        (
            self._dt(table)
            .alias("t")
            .merge(keyset.alias("k"), f"t.`{key}` = k.`{key}`")
            .whenMatchedDelete()
            .execute()
        )
        deleted = self._result(table)
        result = self._write(table, df, "append", evolve)
        result.rows_deleted = deleted.rows_deleted
        result.rows_inserted = result.rows_written
        return result

    def delete(self, table: str, where: str | Column) -> WriteResult:
        before = self.version(table)
        self._dt(table).delete(where if isinstance(where, Column) else F.expr(where))
        result = self._result(table)
        if result.version == before:  # nothing matched: no commit, nothing deleted
            result.rows_deleted = 0
        return result

    def vacuum(self, table: str, retention_hours: float | None = None) -> list[str]:
        before = set(self._disk_files(table))
        self.spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
        self._dt(table).vacuum(retention_hours)
        return sorted(before - set(self._disk_files(table)))

    def history(self, table: str, limit: int | None = None) -> list[dict[str, Any]]:
        rows = (
            self._dt(table).history(limit).collect()
            if limit
            else self._dt(table).history().collect()
        )
        return [r.asDict(recursive=True) for r in rows]

    def restore(self, table: str, version: int) -> None:
        self._dt(table).restoreToVersion(version)

    def optimize(self, table: str, zorder_by: Sequence[str] | None = None) -> dict[str, Any]:
        opt = self._dt(table).optimize()
        out = opt.executeZOrderBy(*zorder_by) if zorder_by else opt.executeCompaction()
        return out.first().asDict(recursive=True)

    def _result(self, table: str) -> WriteResult:
        last = self._dt(table).history(1).first()
        metrics = {k: int(v) for k, v in (last["operationMetrics"] or {}).items() if v.isdigit()}
        return WriteResult(
            table=table,
            version=int(last["version"]),
            rows_written=metrics.get("numOutputRows", 0),
            files_added=metrics.get("numAddedFiles", metrics.get("numFiles", 0)),
            files_removed=metrics.get("numRemovedFiles", 0),
            # DELETE reports numDeletedRows; MERGE ... WHEN MATCHED DELETE reports
            # numTargetRowsDeleted.
            rows_deleted=metrics.get("numDeletedRows", metrics.get("numTargetRowsDeleted", 0)),
            # An overwrite with a data-column replaceWhere rewrites the neighbours of the
            # replaced rows (numCopiedRows); rows_inserted counts the caller's rows only.
            rows_inserted=(
                metrics["numOutputRows"] - metrics.get("numCopiedRows", 0)
                if "numOutputRows" in metrics
                else None
            ),
            extra={"operation": last["operation"]},
        )

    def _disk_files(self, table: str) -> list[str]:
        jvm = self.spark.sparkContext._jvm  # type: ignore[attr-defined]
        path = jvm.org.apache.hadoop.fs.Path(self.path(table))
        fs = path.getFileSystem(self.spark.sparkContext._jsc.hadoopConfiguration())  # type: ignore[attr-defined]
        it = fs.listFiles(path, True)
        out = []
        while it.hasNext():
            p = it.next().getPath().toString()
            if p.endswith(".parquet") and "/_delta_log/" not in p:
                out.append(p)
        return out
