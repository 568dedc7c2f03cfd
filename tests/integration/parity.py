"""Row-for-row comparison of two lakes' tables, run metadata aside."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from behavior_lake.lake import Lake
from behavior_lake.lake.base import has_map

# Columns that name the run or batch that wrote a row, or when: they differ between
# two runs of the same data by design.
RUN_COLUMNS = frozenset(
    {
        "ingested_at",
        "batch_id",
        "ingest_batch_id",
        "run_id",
        "processed_at",
        "computed_at",
        "updated_at",
        "learned_at",
    }
)
# What the demo pipeline writes to silver and gold.
PIPELINE_TABLES = (
    "bronze.events",
    "bronze.quarantine",
    "silver.events",
    "silver.sessions",
    "silver.identity_map",
    "silver.rejects",
    "gold.user_features",
)


# Encrypted columns (AES-GCM draws a fresh IV per value): compared decrypted.
ENCRYPTED_MAPS = frozenset({"pii"})


def _comparable(field: T.StructField, key_hex: str | None) -> Column:
    col = F.col(f"`{field.name}`")
    if field.name in ENCRYPTED_MAPS:
        if key_hex is None:
            raise ValueError(f"{field.name} is encrypted: pass the key to compare it")
        key = F.unhex(F.lit(key_hex))
        col = F.transform_values(
            col, lambda _k, v: F.aes_decrypt(F.unbase64(v), key, F.lit("GCM")).cast("string")
        )
    # set operations cannot compare maps: compare their JSON (sorted entries) instead
    if has_map(field.dataType):
        col = F.to_json(col)
    return col.alias(field.name)


def comparable(
    df: DataFrame, ignore: frozenset[str] = frozenset(), key_hex: str | None = None
) -> DataFrame:
    skip = RUN_COLUMNS | ignore
    return df.select(*[_comparable(f, key_hex) for f in df.schema.fields if f.name not in skip])


def table_differences(
    a: Lake,
    b: Lake,
    key_hex: str,
    tables=PIPELINE_TABLES,
    ignore: frozenset[str] = frozenset(),
    where: dict[str, Column] | None = None,
) -> dict[str, tuple[int, int, int]]:
    """{table: (rows, rows only in a, rows only in b)} for every table that differs
    (`where`: the rows of a table to compare, e.g. the snapshots both lakes built)."""
    out = {}
    for name in tables:
        keep = (where or {}).get(name, F.lit(True))
        left = comparable(a.read(name).filter(keep), ignore, key_hex)
        right = comparable(b.read(name).filter(keep), ignore, key_hex)
        only_a = left.exceptAll(right).count()
        only_b = right.exceptAll(left).count()
        if only_a or only_b:
            out[name] = (left.count(), only_a, only_b)
    return out
