"""The Redis profile cache: one hash per person, `<prefix>profile:<person_id>`.

Fields come from two writers and expire together (activation.redis.ttl_hours, refreshed on
every write): the batch (segment, churn probability and decile: `cache_profiles`, after
scoring, and `rebuild_if_empty` when the cache is empty) and the stream (last event time,
open cart and its value, consents, last action per rule). Writes run on the executors
(mapInPandas, one pipeline per partition), never through the driver.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from behavior_lake.activation.inputs import latest
from behavior_lake.config import RedisSettings
from behavior_lake.contracts.ml import CHURN_SCORES, USER_SEGMENTS
from behavior_lake.lake.base import Lake

log = logging.getLogger(__name__)

BUILT = "meta:built_at"
WRITE_SCHEMA = "written long, failed long, error string"


class CacheUnavailable(RuntimeError):
    """Redis did not answer (down, timeout, refused)."""


def client(r: RedisSettings):
    import redis

    return redis.Redis.from_url(
        r.url,
        socket_timeout=r.timeout_seconds,
        socket_connect_timeout=r.timeout_seconds,
        decode_responses=True,
    )


class ProfileCache:
    def __init__(self, settings: RedisSettings, redis_client=None) -> None:
        self.s = settings
        self.r = redis_client if redis_client is not None else client(settings)
        self.ttl = int(settings.ttl_hours * 3600)

    def key(self, person_id: str) -> str:
        return f"{self.s.prefix}profile:{person_id}"

    def get(self, person_id: str) -> dict[str, str] | None:
        import redis

        try:
            got = self.r.hgetall(self.key(person_id))
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise CacheUnavailable(str(exc)) from exc
        return got or None

    def put_many(self, profiles: Iterable[tuple[str, dict[str, Any]]]) -> int:
        pipe = self.r.pipeline(transaction=False)
        n = 0
        for person, fields in profiles:
            values = {k: _text(v) for k, v in fields.items() if v is not None}
            if not values:
                continue
            pipe.hset(self.key(person), mapping=values)
            pipe.expire(self.key(person), self.ttl)
            n += 1
            if n % 500 == 0:
                pipe.execute()
        pipe.execute()
        return n

    def forget(self, id_sha: set[str]) -> int:
        """Delete the profiles of erased subjects: `id_sha` holds sha256 hex of their
        pseudonyms (ops.erasure_suppression), and a profile key names a pseudonym. One
        SCAN over the profile keys; returns how many were deleted."""
        prefix = self.key("")
        doomed = [
            k
            for k in self.r.scan_iter(match=f"{prefix}*", count=1000)
            if hashlib.sha256(_name(k)[len(prefix) :].encode()).hexdigest() in id_sha
        ]
        for i in range(0, len(doomed), 500):
            self.r.delete(*doomed[i : i + 500])
        return len(doomed)

    def mark_built(self) -> None:
        self.r.set(f"{self.s.prefix}{BUILT}", str(int(time.time())), ex=self.ttl)

    def is_empty(self) -> bool:
        return not self.r.exists(f"{self.s.prefix}{BUILT}")


def _name(key: Any) -> str:
    return key.decode() if isinstance(key, bytes) else key


def forget_erased(lake: Lake, settings: RedisSettings) -> int | None:
    """After an erasure run: drop the cached profiles of every suppressed subject. None
    when Redis is not reachable (the profiles then expire after redis.ttl_hours)."""
    from behavior_lake.contracts.governance import SUPPRESSION

    if not lake.exists(SUPPRESSION.name):
        return 0
    ids = {r[0] for r in lake.read(SUPPRESSION.name).select("id_sha").distinct().collect()}
    try:
        n = ProfileCache(settings).forget(ids)
    except Exception as exc:
        # No cache in use is the common case (batch-only deployments): not a warning.
        log.info("redis profile cache not reachable (%s): cached profiles expire by TTL", exc)
        return None
    log.info("redis profile cache: %d erased profile(s) deleted", n)
    return n


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict | list):
        return json.dumps(v, sort_keys=True)
    return str(v)


def write_frame(df: DataFrame, settings: RedisSettings) -> dict[str, int]:
    """Every row of `df` (person_id + profile fields) into Redis from the executors.
    Redis being down is counted and logged, never raised: the lake stays the truth."""

    def write(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        written = failed = 0
        error = None
        cache = None
        for pdf in batches:
            rows = [
                (r["person_id"], {k: v for k, v in r.items() if k != "person_id" and pd.notna(v)})
                for r in pdf.to_dict("records")
            ]
            try:
                cache = cache or ProfileCache(settings)
                written += cache.put_many(rows)
            except Exception as exc:
                failed += len(rows)
                error = f"{type(exc).__name__}: {exc}"[:300]
        yield pd.DataFrame({"written": [written], "failed": [failed], "error": [error]})

    got = (
        df.mapInPandas(write, WRITE_SCHEMA)
        .agg(
            F.sum("written").alias("written"),
            F.sum("failed").alias("failed"),
            F.max("error").alias("error"),
        )
        .first()
    )
    out = {"written": int(got["written"] or 0), "failed": int(got["failed"] or 0)}
    if out["failed"]:
        log.warning(
            "redis profile cache: %d profile(s) not written (%s); the lake is unchanged",
            out["failed"],
            got["error"],
        )
    return out


def gold_profiles(lake: Lake) -> DataFrame | None:
    """Per person, the latest churn probability and decile and the published segment."""
    parts = []
    if lake.exists(CHURN_SCORES.name):
        parts.append(
            latest(lake.read(CHURN_SCORES.name), "as_of_date").select(
                "person_id",
                "churn_probability",
                "risk_decile",
                F.col("as_of_date").cast("string").alias("scores_as_of"),
            )
        )
    if lake.exists(USER_SEGMENTS.name):
        parts.append(
            latest(lake.read(USER_SEGMENTS.name), "as_of_date").select(
                "person_id",
                "segment_id",
                "segment_name",
                F.col("as_of_date").cast("string").alias("segments_as_of"),
            )
        )
    if not parts:
        return None
    out = parts[0]
    for p in parts[1:]:
        out = out.join(p, "person_id", "full_outer")
    return out


def cache_profiles(lake: Lake, settings: RedisSettings) -> dict[str, int]:
    """The batch writer: gold profiles into Redis (after scoring; or to rebuild)."""
    profiles = gold_profiles(lake)
    if profiles is None:
        log.info("redis profile cache: no gold scores or segments yet, nothing to cache")
        return {"written": 0, "failed": 0}
    out = write_frame(profiles, settings)
    if out["written"] and not out["failed"]:
        try:
            ProfileCache(settings).mark_built()
        except Exception as exc:
            log.warning("redis profile cache: could not mark the build (%s)", exc)
    log.info("redis profile cache: %d profile(s) written from gold", out["written"])
    return out


def refresh_after_scoring(lake: Lake, settings: RedisSettings) -> int | None:
    """The scoring jobs' writer: when the profile cache is reachable, the new gold scores
    and segments go to Redis at once (sync_profiles does the same on its own schedule).
    None when it is not reachable, which batch-only deployments are: not an error."""
    try:
        ProfileCache(settings).r.ping()
    except Exception as exc:
        log.info("redis profile cache not reachable (%s): not refreshed", exc)
        return None
    return cache_profiles(lake, settings)["written"]


def rebuild_if_empty(lake: Lake, settings: RedisSettings) -> dict[str, int] | None:
    """Rebuild from gold when the cache holds no build marker (a fresh or flushed Redis)."""
    try:
        empty = ProfileCache(settings).is_empty()
    except Exception as exc:
        log.warning("redis profile cache unreachable (%s): not rebuilt", exc)
        return None
    if not empty:
        return None
    log.info("redis profile cache is empty: rebuilding it from gold")
    return cache_profiles(lake, settings)


def stream_profiles(settings: RedisSettings):
    """The stream's writer: profile rows of a decisions micro-batch -> Redis fields."""

    def write(profiles: DataFrame) -> None:
        fields = profiles.select(
            "person_id",
            "last_event_ms",
            "cart_open",
            "cart_value",
            "last_actions",
            "consents",
        )
        write_frame(fields, settings)

    return write
