"""The generator's planted truth, keyed like silver (person_id), for evaluation only."""

from __future__ import annotations

from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from behavior_lake.privacy.pseudonym import user_person_id


def truth_persons(spark: SparkSession, truth_root: str, pseudonym_key: str) -> DataFrame:
    """One row per generated person: person_id, archetype, is_bot, first_day, churn_day."""
    path = str(Path(truth_root) / "users" / "users.jsonl")
    raw = spark.read.schema(
        "user_id string, archetype string, is_bot boolean, first_day int, churn_day int"
    ).json(path)
    return raw.select(
        user_person_id(F.col("user_id"), pseudonym_key).alias("person_id"),
        "archetype",
        "is_bot",
        "first_day",
        "churn_day",
    )
