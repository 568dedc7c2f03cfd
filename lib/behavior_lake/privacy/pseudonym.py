"""HMAC-SHA256 pseudonyms from Spark built-ins (no Python UDF).

HMAC(K, m) = H((K' xor opad) || H((K' xor ipad) || m)), K' = K zero-padded to the
64-byte block (hashed first when longer). The two padded keys are computed once on
the driver and reach the executors as scalar subqueries (`privacy.secret`), never as
literals of a plan.
"""

from __future__ import annotations

import hashlib

from pyspark.sql import Column
from pyspark.sql import functions as F

from behavior_lake.privacy.secret import secret_bytes

PERSON_ID_HEX = 32
JUNK_IDS = ("", "null", "undefined", "0", "anonymous", "none", "nil", "(null)", "[object object]")


def _pads(key: str) -> tuple[bytes, bytes]:
    k = key.encode("utf-8")
    if len(k) > 64:
        k = hashlib.sha256(k).digest()
    k = k.ljust(64, b"\x00")
    return bytes(b ^ 0x36 for b in k), bytes(b ^ 0x5C for b in k)


def hmac_sha256_hex(message: Column, key: str) -> Column:
    """Hex HMAC-SHA256 of a UTF-8 string column."""
    ipad, opad = _pads(key)
    inner = F.sha2(F.concat(secret_bytes(ipad, "ipad"), F.encode(message, "UTF-8")), 256)
    return F.sha2(F.concat(secret_bytes(opad, "opad"), F.unhex(inner)), 256)


def pseudonym(prefix: str, raw_id: Column, key: str) -> Column:
    """First 32 hex chars of HMAC-SHA256(key, prefix + raw_id)."""
    return F.substring(hmac_sha256_hex(F.concat(F.lit(prefix), raw_id), key), 1, PERSON_ID_HEX)


def user_person_id(user_id: Column, key: str) -> Column:
    return pseudonym("user:", user_id, key)


def anon_hash(anonymous_id: Column, key: str) -> Column:
    return pseudonym("anon:", anonymous_id, key)


def is_junk_id(raw_id: Column) -> Column:
    """Placeholder ids broken SDKs send; they never identify or merge anyone."""
    return raw_id.isNull() | F.lower(F.trim(raw_id)).isin(*JUNK_IDS)
