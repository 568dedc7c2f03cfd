"""The Lake port and its engines (`make_lake`); `behavior_lake.catalog.open_lake` opens
the configured one over the catalog."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from pyspark.sql import SparkSession

from behavior_lake.lake.base import (
    Lake,
    LakeError,
    SchemaMismatchError,
    TableNotFoundError,
    TableSpec,
    WriteResult,
)
from behavior_lake.lake.where import Where
from behavior_lake.spark import delta_spark_available

log = logging.getLogger(__name__)

__all__ = [
    "Lake",
    "LakeError",
    "SchemaMismatchError",
    "TableNotFoundError",
    "TableSpec",
    "Where",
    "WriteResult",
    "choose_engine",
    "make_lake",
]


def choose_engine(spark: SparkSession, requested: str) -> str:
    if requested == "delta-rs":
        return "delta-rs"
    available = delta_spark_available(spark)
    if requested == "delta-spark":
        if not available:
            raise LakeError(
                "lake.engine is delta-spark but the Delta JVM classes are not loadable in "
                "this session: locally run `make jars`; on a cluster pass the jars "
                "(infra/spark-submit/submit.sh does); or set lake.engine: delta-rs"
            )
        return "delta-spark"
    return "delta-spark" if available else "delta-rs"


def make_lake(
    spark: SparkSession,
    root: str,
    engine: str,
    specs: Mapping[str, TableSpec] | None = None,
    *,
    deletion_vectors: bool = False,
    catalog: str | None = None,
    schema_prefix: str = "",
) -> Lake:
    if engine == "delta-spark":
        from behavior_lake.lake.delta_spark import DeltaSparkLake

        return DeltaSparkLake(
            spark,
            root,
            specs,
            deletion_vectors=deletion_vectors,
            catalog=catalog,
            schema_prefix=schema_prefix,
        )
    if catalog is not None:
        raise LakeError(
            f"lake.catalog is {catalog!r} but the engine is {engine}: tables by name need "
            "delta-spark (locally `make jars`; on a cluster, the Delta jars)"
        )
    if engine == "delta-rs":
        from behavior_lake.lake.delta_rs import DeltaRsLake

        return DeltaRsLake(spark, root, specs)
    raise LakeError(
        f"lake.engine: unknown engine {engine!r}; expected auto, delta-rs or delta-spark"
    )
