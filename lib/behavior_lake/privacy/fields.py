"""Field-level helpers: AES-GCM encryption of single values and ids read from raw lines
(all Spark built-ins)."""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from behavior_lake.privacy.secret import secret_bytes


def aes_key(key_hex: str) -> Column:
    """The AES key as a binary Column that no plan spells out (`privacy.secret`)."""
    return secret_bytes(bytes.fromhex(key_hex), "aes_key")


def encrypt(value: Column, key: Column) -> Column:
    """AES-GCM: iv || ciphertext || tag, as binary (null stays null)."""
    return F.aes_encrypt(value, key, F.lit("GCM"))


def decrypt_string(value: Column, key: Column) -> Column:
    """The inverse of `encrypt` for string values."""
    return F.aes_decrypt(value, key, F.lit("GCM")).cast("string")


def raw_field(name: str) -> Column:
    """A top-level id from `raw_line`, also when the line is truncated or not JSON."""
    found = F.regexp_extract(F.col("raw_line"), '"' + name + r'"\s*:\s*"([^"]*)"', 1)
    return F.coalesce(F.get_json_object("raw_line", f"$.{name}"), F.when(found != "", found))
