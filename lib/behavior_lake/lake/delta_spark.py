"""Cluster Delta engine: the Delta JVM library (DeltaTable API, distributed DML)."""

from __future__ import annotations

import logging
import os
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
    has_map,
    rebalanced_for_write,
    schema_differences,
    validate_table_name,
)
from behavior_lake.lake.files import hadoop_files
from behavior_lake.lake.where import Where, sql_literal

log = logging.getLogger(__name__)

# Table features both engines can write (see docs/engines.md): no row tracking,
# clustering or in-commit timestamps; deletion vectors only when lake.deletion_vectors
# is on (delta-rs 1.6 cannot read a table that has them).
_PORTABLE_PROPERTIES = {
    "delta.enableRowTracking": "false",
}
STATS_COLUMNS = "delta.dataSkippingStatsColumns"
_STATS_TYPES = (
    T.NumericType,
    T.DateType,
    T.TimestampType,
    T.TimestampNTZType,
)


def stats_columns(schema: T.StructType, partition_by: Sequence[str]) -> list[str]:
    """Columns Delta keeps min/max statistics for: typed values (times, dates, numbers),
    never strings. Identifiers are strings, and a statistic in the transaction log would
    outlive an erasure (old commits and checkpoints keep it); data skipping on them
    is given up."""
    return [
        f.name
        for f in schema.fields
        if isinstance(f.dataType, _STATS_TYPES) and f.name not in partition_by
    ]


def _null_safe_equal(field: T.StructField) -> str:
    """`t.c <=> s.c` (maps cannot be compared: their JSON is)."""
    t, s = f"t.`{field.name}`", f"s.`{field.name}`"
    if has_map(field.dataType):
        t, s = f"to_json({t})", f"to_json({s})"
    return f"{t} <=> {s}"


class DeltaSparkLake(Lake):
    engine = "delta-spark"

    def __init__(
        self,
        spark,
        root,
        specs=None,
        *,
        deletion_vectors: bool = False,
        catalog: str | None = None,
        schema_prefix: str = "",
    ) -> None:
        # A relative local root (`lakehouse`, the local default): Delta's builder takes a
        # location without a scheme or leading slash for a table name, and refuses it.
        if ":" not in root.split("/", 1)[0] and not os.path.isabs(root):
            root = os.path.abspath(root)
        super().__init__(spark, root, specs)
        self.deletion_vectors = deletion_vectors
        # With a catalog, tables are catalog.<schema_prefix><layer>.<table> (Unity
        # Catalog on Databricks, Spark's session catalog locally), managed by the
        # catalog and addressed by name only; without one, by path under `root`.
        self.catalog = catalog
        self.schema_prefix = schema_prefix

    # ------------------------------------------------------------------ addressing
    def table_name(self, table: str) -> str | None:
        """The three-part name `catalog`.`schema`.`table` (quoted), or None: by path."""
        if self.catalog is None:
            return None
        validate_table_name(table)
        layer, name = table.split(".")
        return ".".join(_quote(p) for p in (self.catalog, self.schema_prefix + layer, name))

    def path(self, table: str) -> str:
        """The table's storage location (by name: what the catalog says, once it exists)."""
        fqn = self.table_name(table)
        if fqn is None:
            return super().path(table)
        if not self.exists(table):
            return fqn
        return str(self._dt(table).detail().select("location").first()[0])

    def _sql_ref(self, table: str) -> str:
        return self.table_name(table) or f"delta.`{super().path(table)}`"

    def _dt(self, table: str) -> Any:
        from delta.tables import DeltaTable

        if not self.exists(table):
            self.ensure(table)
        fqn = self.table_name(table)
        if fqn is not None:
            return DeltaTable.forName(self.spark, fqn)
        return DeltaTable.forPath(self.spark, self.path(table))

    def exists(self, table: str) -> bool:
        from delta.tables import DeltaTable

        fqn = self.table_name(table)
        if fqn is not None:
            return bool(self.spark.catalog.tableExists(fqn))
        return bool(DeltaTable.isDeltaTable(self.spark, self.path(table)))

    def create(self, spec: TableSpec) -> None:
        from delta.tables import DeltaTable

        if self.exists(spec.name):
            diffs = schema_differences(self.schema(spec.name), spec.schema)
            if diffs:
                raise SchemaMismatchError(f"{spec.name} exists with another schema: {diffs}")
            return
        props = dict(_PORTABLE_PROPERTIES)
        props["delta.enableDeletionVectors"] = str(self.deletion_vectors).lower()
        stats = stats_columns(spec.schema, spec.partition_by)
        if stats:
            props[STATS_COLUMNS] = ",".join(f"`{c}`" for c in stats)
        else:
            props["delta.dataSkippingNumIndexedCols"] = "0"
        fqn = self.table_name(spec.name)
        if fqn is not None:
            self._create_by_name(fqn, spec, props)
        else:
            builder = DeltaTable.createIfNotExists(self.spark).location(self.path(spec.name))
            builder = builder.addColumns(spec.schema)
            if spec.partition_by:
                builder = builder.partitionedBy(*spec.partition_by)
            for key, value in props.items():
                builder = builder.property(key, value)
            if spec.grain:
                builder = builder.comment(spec.grain)
            builder.execute()
        log.info("created table %s at %s", spec.name, self.path(spec.name))

    def _create_by_name(self, fqn: str, spec: TableSpec, props: dict[str, str]) -> None:
        """A managed table in the catalog (Delta's table builder takes two-part names
        only): schema, then the table from an empty frame through DataFrameWriterV2."""
        self.spark.sql(f"CREATE SCHEMA IF NOT EXISTS {fqn.rsplit('.', 1)[0]}")
        writer = self.spark.createDataFrame([], spec.schema).writeTo(fqn).using("delta")
        if spec.partition_by:
            writer = writer.partitionedBy(*[F.col(c) for c in spec.partition_by])
        for key, value in props.items():
            writer = writer.tableProperty(key, value)
        writer.create()
        if spec.grain:
            self.spark.sql(f"COMMENT ON TABLE {fqn} IS {sql_literal(spec.grain)}")

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
        fqn = self.table_name(table)
        if fqn is not None:
            if version is None:
                return self.spark.read.table(fqn)
            return self.spark.sql(f"SELECT * FROM {fqn} VERSION AS OF {int(version)}")
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.load(self.path(table))

    def _write(self, table: str, df: DataFrame, mode: str, evolve: bool, **options: str):
        self.ensure(table)
        df, evolve = self.conformed(table, df, evolve)
        # A declared table's partitioning is in its spec: no DESCRIBE DETAIL per write.
        spec = self.spec(table)
        if spec:
            df = rebalanced_for_write(df, spec.partition_by, spec.cluster_by)
        else:
            df = rebalanced_for_write(df, self.partition_columns(table))
        before = self.version(table)
        fqn = self.table_name(table)
        if fqn is not None:
            self._write_by_name(fqn, df, mode, evolve, options.get("replaceWhere"))
            return self._result(table, before)
        writer = df.write.format("delta").mode(mode)
        if evolve:
            writer = writer.option("mergeSchema", "true")
        for key, value in options.items():
            writer = writer.option(key, value)
        writer.save(self.path(table))
        return self._result(table, before)

    @staticmethod
    def _write_by_name(
        fqn: str, df: DataFrame, mode: str, evolve: bool, replace_where: str | None
    ) -> None:
        """DataFrameWriterV2 keeps the table (properties, partitioning): a v1 overwrite
        through saveAsTable would replace it."""
        writer = df.writeTo(fqn)
        if evolve:
            writer = writer.option("mergeSchema", "true")
        if mode == "append":
            writer.append()
        elif replace_where is not None:
            writer.overwrite(F.expr(replace_where))
        else:
            writer.overwrite(F.lit(True))

    def append(self, table: str, df: DataFrame, *, evolve: bool = False) -> WriteResult:
        return self._write(table, df, "append", evolve)

    def overwrite(
        self, table: str, df: DataFrame, *, where: Where | None = None, evolve: bool = False
    ) -> WriteResult:
        if where is None:
            return self._write(table, df, "overwrite", evolve)
        return self._write(table, df, "overwrite", evolve, replaceWhere=where.sql())

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
        df, evolve = self.conformed(table, df, evolve)
        self._check_unique_keys(df, keys, table)
        cond = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
        builder = self._dt(table).alias("t").merge(df.alias("s"), cond)
        if evolve:  # new columns and grown structs join the table's schema
            builder = builder.withSchemaEvolution()
        if update_existing:
            builder = builder.whenMatchedUpdateAll()
        before = self.version(table)
        builder.whenNotMatchedInsertAll().execute()
        return self._result(table, before)

    def replace_keys(
        self, table: str, df: DataFrame, key: str, keys: DataFrame, *, evolve: bool = False
    ) -> WriteResult:
        # Two commits on this engine: MERGE ... WHEN MATCHED DELETE, then an append.
        self.ensure(table)
        df, evolve = self.conformed(table, df, evolve)
        keyset = keys.select(F.col(key)).distinct()
        before = self.version(table)
        (
            self._dt(table)
            .alias("t")
            .merge(keyset.alias("k"), f"t.`{key}` = k.`{key}`")
            .whenMatchedDelete()
            .execute()
        )
        deleted = self._result(table, before)
        result = self._write(table, df, "append", evolve)
        result.rows_deleted = deleted.rows_deleted
        result.rows_inserted = result.rows_written
        return result

    def delete(self, table: str, where: Where | Column) -> WriteResult:
        """A `Where`: Delta's DELETE. A Column (e.g. the pseudonym HMAC of erasure, with
        the key and the subject's ids as literals): a MERGE whose source is the matching
        rows themselves. Delta writes a DELETE's predicate into the commit's
        operationParameters, so the literals would stay in the transaction log after the
        rows are gone; a MERGE's condition names columns only."""
        before = self.version(table)
        if isinstance(where, Column):
            target = self.read(table)
            cond = " AND ".join(_null_safe_equal(f) for f in target.schema.fields)
            (
                self._dt(table)
                .alias("t")
                .merge(target.filter(where).alias("s"), cond)
                .whenMatchedDelete()
                .execute()
            )
        else:
            self._dt(table).delete(where.column())
        result = self._result(table, before)
        if result.version != before:
            # whole files dropped, none rewritten and no deletion vector written
            m = result.extra.get("metrics", {})
            result.extra["metadata_only"] = (
                result.files_added == 0
                and not m.get("numCopiedRows")
                and not m.get("numTargetRowsCopied")
                and not m.get("numDeletionVectorsAdded")
                and not m.get("numTargetDeletionVectorsAdded")
            )
        return result

    def vacuum(self, table: str, retention_hours: float | None = None) -> list[str]:
        before = set(self._disk_files(table))
        self.spark.conf.set("spark.databricks.delta.retentionDurationCheck.enabled", "false")
        # Delta 4.4 ignores a retention other than 0 hours unless told not to (it then
        # used delta.deletedFileRetentionDuration, 7 days, whatever was configured).
        self.spark.conf.set("spark.databricks.delta.vacuum.retentionWindowIgnore.enabled", "false")
        self._dt(table).vacuum(retention_hours)
        return sorted(before - set(self._disk_files(table)))

    def purge(self, table: str) -> dict[str, Any]:
        """REORG ... APPLY (PURGE): rewrite files that carry deletion vectors."""
        if not self._has_deletion_vectors(table):
            return {}
        out = self.spark.sql(f"REORG TABLE {self._sql_ref(table)} APPLY (PURGE)")
        metrics = out.first()
        log.info("purged deletion vectors of %s", table)
        return metrics.asDict(recursive=True) if metrics else {}

    def _has_deletion_vectors(self, table: str) -> bool:
        detail = self._dt(table).detail().select("properties", "tableFeatures").first()
        props = detail["properties"] or {}
        features = detail["tableFeatures"] or []
        return props.get("delta.enableDeletionVectors") == "true" or ("deletionVectors" in features)

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

    def _result(self, table: str, before: int) -> WriteResult:
        """The metrics of the commit this operation made; zeros when it made none (an
        empty write or a delete/merge that matched nothing commits nothing)."""
        last = self._dt(table).history(1).first()
        if int(last["version"]) == before:
            return WriteResult(table=table, version=before, rows_inserted=0)
        metrics = {k: int(v) for k, v in (last["operationMetrics"] or {}).items() if v.isdigit()}
        return WriteResult(
            table=table,
            version=int(last["version"]),
            rows_written=metrics.get("numOutputRows", 0),
            # WRITE/DELETE: numAddedFiles/numFiles, numRemovedFiles; MERGE: numTarget*
            files_added=metrics.get(
                "numAddedFiles", metrics.get("numFiles", metrics.get("numTargetFilesAdded", 0))
            ),
            files_removed=metrics.get("numRemovedFiles", metrics.get("numTargetFilesRemoved", 0)),
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
            extra={"operation": last["operation"], "metrics": metrics},
        )

    def _disk_files(self, table: str) -> list[str]:
        """The data files under the table's location (what vacuum reports it removed).
        Unity Catalog does not let a job list a managed table's storage: [] there."""
        try:
            return sorted(hadoop_files(self.spark, self.path(table)))
        except Exception as exc:  # py4j wraps the JVM's access errors
            if self.catalog is None:
                raise
            log.info("%s: storage not listable (%s): vacuum counts no files", table, exc)
            return []


def _quote(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"
