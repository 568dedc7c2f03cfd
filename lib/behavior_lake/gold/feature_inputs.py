"""The small frames gold.user_features is aggregated from: per person and day, per
session (dated by its end), per click-path n-gram; and the learned path vocabulary."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import date

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from behavior_lake.config import FeatureSettings
from behavior_lake.contracts.gold import (
    VOCABULARY_SCHEMA,
)
from behavior_lake.gold.feature_defs import ORDER_EVENT, slug

log = logging.getLogger(__name__)


def daily_activity(
    events: DataFrame, categories: Sequence[str], platforms: Sequence[str]
) -> DataFrame:
    """One row per person and event_date with the per-day sums the features need."""
    is_order = F.col("event_name") == ORDER_EVENT
    aggs = [
        F.count(F.lit(1)).alias("d_events"),
        F.sum(is_order.cast("long")).alias("d_orders"),
        F.sum(F.when(is_order, F.col("revenue")).otherwise(F.lit(0).cast("decimal(18,2)"))).alias(
            "d_revenue"
        ),
        F.min("event_ts").alias("d_first_ts"),
        F.max("event_ts").alias("d_last_ts"),
        F.max(F.when(is_order, F.col("event_ts"))).alias("d_last_order_ts"),
    ]
    aggs += [
        F.sum((F.col("category") == c).cast("long")).alias(f"d_cat_{slug(c)}") for c in categories
    ]
    aggs += [
        F.sum((F.col("platform") == p).cast("long")).alias(f"d_platform_{slug(p)}")
        for p in platforms
    ]
    return events.groupBy("person_id", "event_date").agg(*aggs)


def session_rows(sessions: DataFrame) -> DataFrame:
    """One row per session, dated by its END (a session counts once it is over)."""
    return sessions.select(
        "person_id",
        F.to_date("session_end_ts").alias("s_date"),
        F.col("session_end_ts").alias("s_end_ts"),
        F.col("duration_s").alias("s_duration_s"),
        F.col("is_bounce").alias("s_is_bounce"),
    )


def session_ngrams(events: DataFrame, sizes: Iterable[int]) -> DataFrame:
    """One row per n-gram occurrence within a session: person_id, ngram, n, ngram_date.

    The n-gram is dated by its LAST event, so it only counts once all its events are
    before the cutoff. Event names are joined with ' > '.
    """
    sizes = sorted(set(sizes))
    w = Window.partitionBy("session_id").orderBy("event_ts", "message_id")
    base = events.select("person_id", "session_id", "event_ts", "message_id", "event_name")
    cols = [F.col("person_id")]
    for k in range(1, max(sizes)):
        base = base.withColumn(f"_n{k}", F.lead("event_name", k).over(w)).withColumn(
            f"_t{k}", F.lead("event_ts", k).over(w)
        )
    grams = []
    for n in sizes:
        names = [F.col("event_name")] + [F.col(f"_n{k}") for k in range(1, n)]
        grams.append(
            F.struct(
                F.concat_ws(" > ", *names).alias("ngram"),
                F.lit(n).alias("n"),
                F.to_date(F.col(f"_t{n - 1}")).alias("ngram_date"),
                F.col(f"_n{n - 1}").isNotNull().alias("ok"),
            )
        )
    out = base.select(*cols, F.explode(F.array(*grams)).alias("g")).filter("g.ok")
    return out.select("person_id", "g.ngram", "g.n", "g.ngram_date")


def learn_vocabulary(ngrams: DataFrame, start: date, end: date, cfg: FeatureSettings) -> DataFrame:
    """The `path_vocabulary_size` most informative n-grams seen in [start, end).

    Informative = splits persons: person share p between the configured min and max, ranked
    by p * (1 - p) (the variance of "has this n-gram"), then by occurrences, then name.
    """
    window = ngrams.filter(
        (F.col("ngram_date") >= F.lit(start)) & (F.col("ngram_date") < F.lit(end))
    )
    persons = window.select("person_id").distinct().count()
    if persons == 0:
        return window.sparkSession.createDataFrame([], VOCABULARY_SCHEMA)
    stats = window.groupBy("ngram", "n").agg(
        F.countDistinct("person_id").alias("persons"), F.count(F.lit(1)).alias("occurrences")
    )
    p = F.col("persons") / F.lit(persons)
    ranked = (
        stats.withColumn("person_share", p)
        .filter(
            (F.col("person_share") >= cfg.path_min_person_share)
            & (F.col("person_share") <= cfg.path_max_person_share)
        )
        .withColumn("score", p * (1 - p))
        .withColumn(
            "slot",
            F.row_number().over(
                Window.partitionBy(F.lit(1)).orderBy(
                    F.desc("score"), F.desc("occurrences"), F.asc("ngram")
                )
            ),
        )
        .filter(F.col("slot") <= cfg.path_vocabulary_size)
    )
    return ranked.select(
        F.col("slot").cast("int"),
        "ngram",
        F.col("n").cast("int"),
        "person_share",
        "occurrences",
        "score",
        F.lit(start).alias("learned_from"),
        F.lit(end).alias("learned_until"),
        F.current_timestamp().alias("learned_at"),
    )
