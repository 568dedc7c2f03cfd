"""Identity stitching: which person each anonymous id belongs to.

Evidence: any message carrying both a userId and an anonymousId (`identify`), and
`alias` messages (previousId -> userId). Rules: junk ids never link; an anonymous id
belongs to the person of its earliest link (shared devices do not merge people); a
person keeps at most `max_ids_per_person` anonymous ids (earliest first), so a runaway
device farm cannot swallow everyone. Person ids: HMAC("user:"+userId) for identified
people, HMAC("anon:"+anonymousId) for people never identified (= their anonymous id hash).
"""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from behavior_lake.privacy.pseudonym import anon_hash, is_junk_id, user_person_id

log = logging.getLogger(__name__)


def identity_links(bronze: DataFrame, max_ids_per_person: int) -> DataFrame:
    """One row per linked raw anonymous id: anonymous_id, user_id, method, valid_from,
    plus `capped` (links dropped by the per-person cap are returned with capped=True)."""
    both = bronze.filter(
        ~is_junk_id(F.col("user_id"))
        & ~is_junk_id(F.col("anonymous_id"))
        & (F.col("event_type") != "alias")
    ).select(
        "anonymous_id", "user_id", F.col("event_ts").alias("ts"), F.lit("identify").alias("method")
    )
    alias = bronze.filter(
        (F.col("event_type") == "alias")
        & ~is_junk_id(F.col("user_id"))
        & ~is_junk_id(F.col("previous_id"))
    ).select(
        F.col("previous_id").alias("anonymous_id"),
        "user_id",
        F.col("event_ts").alias("ts"),
        F.lit("alias").alias("method"),
    )
    pairs = (
        both.unionByName(alias)
        .groupBy("anonymous_id", "user_id")
        .agg(
            F.min("ts").alias("valid_from"),
            F.min_by("method", F.struct("ts", "method")).alias("method"),
        )
    )
    first_owner = Window.partitionBy("anonymous_id").orderBy("valid_from", "user_id")
    owned = pairs.withColumn("_r", F.row_number().over(first_owner)).filter("_r = 1").drop("_r")
    per_person = Window.partitionBy("user_id").orderBy("valid_from", "anonymous_id")
    return owned.withColumn("capped", F.row_number().over(per_person) > max_ids_per_person)


def identity_map(bronze: DataFrame, links: DataFrame, key: str) -> DataFrame:
    """silver.identity_map rows (hashed ids only)."""
    seen = (
        bronze.filter(~is_junk_id(F.col("anonymous_id")))
        .groupBy("anonymous_id")
        .agg(F.min("event_ts").alias("first_seen"), F.max("event_ts").alias("last_seen"))
    )
    return (
        links.filter(~F.col("capped"))
        .join(seen, on="anonymous_id", how="left")
        .select(
            anon_hash(F.col("anonymous_id"), key).alias("anonymous_id_hash"),
            user_person_id(F.col("user_id"), key).alias("person_id"),
            "method",
            "valid_from",
            "first_seen",
            "last_seen",
        )
    )


def with_person(bronze: DataFrame, links: DataFrame, key: str) -> DataFrame:
    """Add `person_id` (null when only junk ids are present) and `anonymous_id_hash`."""
    active = links.filter(~F.col("capped")).select(
        "anonymous_id", F.col("user_id").alias("_linked_user")
    )
    anon_ok = ~is_junk_id(F.col("anonymous_id"))
    joined = bronze.join(active, on="anonymous_id", how="left")
    person = (
        F.when(~is_junk_id(F.col("user_id")), user_person_id(F.col("user_id"), key))
        .when(
            anon_ok & F.col("_linked_user").isNotNull(), user_person_id(F.col("_linked_user"), key)
        )
        .when(anon_ok, anon_hash(F.col("anonymous_id"), key))
    )
    return (
        joined.withColumn("person_id", person)
        .withColumn("anonymous_id_hash", F.when(anon_ok, anon_hash(F.col("anonymous_id"), key)))
        .drop("_linked_user")
    )


def changed_persons(old_map: DataFrame | None, new_map: DataFrame) -> DataFrame:
    """Persons (old and new) of anonymous ids whose effective owner changed.

    An unmapped anonymous id is its own person (person_id = anonymous_id_hash)."""
    new = new_map.select("anonymous_id_hash", F.col("person_id").alias("new_p"))
    if old_map is None:
        old = new.select("anonymous_id_hash", F.lit(None).cast("string").alias("old_p")).limit(0)
    else:
        old = old_map.select("anonymous_id_hash", F.col("person_id").alias("old_p"))
    both = (
        old.join(new, on="anonymous_id_hash", how="full_outer")
        .select(
            F.coalesce("old_p", "anonymous_id_hash").alias("old_p"),
            F.coalesce("new_p", "anonymous_id_hash").alias("new_p"),
        )
        .filter(F.col("old_p") != F.col("new_p"))
    )
    return (
        both.select(F.col("old_p").alias("person_id"))
        .unionByName(both.select(F.col("new_p").alias("person_id")))
        .distinct()
    )
