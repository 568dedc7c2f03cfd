"""Feature drift between consecutive snapshots (PSI, null rates) -> ops.feature_drift."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from behavior_lake.config import FeatureSettings
from behavior_lake.contracts.gold import (
    DRIFT,
)

log = logging.getLogger(__name__)

PSI_EPS = 1e-4


def _long(features: DataFrame, names: Sequence[str]) -> DataFrame:
    """(as_of_date, feature, value) rows, nulls kept."""
    pairs = F.array(
        *[
            F.struct(F.lit(n).alias("feature"), F.col(n).cast("double").alias("value"))
            for n in names
        ]
    )
    return features.select("as_of_date", F.explode(pairs).alias("kv")).select(
        "as_of_date", "kv.feature", "kv.value"
    )


def feature_drift(
    features: DataFrame,
    pairs: Sequence[tuple[date, date]],
    names: Sequence[str],
    cfg: FeatureSettings,
) -> DataFrame:
    """PSI and null rate for each (snapshot, reference snapshot) pair and feature.

    Bins are the reference snapshot's deciles (`drift_bins` quantiles, duplicates merged);
    PSI = sum over bins (a - r) * ln(a / r) with shares floored at 1e-4. Nulls are left out
    of the PSI and measured by the null rates.
    """
    spark = features.sparkSession
    if not pairs:
        return spark.createDataFrame([], DRIFT.schema)
    pairs_df = spark.createDataFrame(list(pairs), "as_of_date date, reference_as_of_date date")
    dates = sorted({d for p in pairs for d in p})
    snap = features.filter(F.col("as_of_date").isin(dates))
    long = _long(snap, names).cache()
    probs = [i / cfg.drift_bins for i in range(1, cfg.drift_bins)]
    edges = long.groupBy(F.col("as_of_date").alias("reference_as_of_date"), "feature").agg(
        F.array_distinct(F.percentile_approx("value", probs, 10000)).alias("edges")
    )
    # each current value is binned with its reference's edges: bin = #edges < value
    nulls = long.groupBy("as_of_date", "feature").agg(
        F.count(F.lit(1)).alias("rows"),
        F.avg(F.col("value").isNull().cast("double")).alias("null_rate"),
    )
    side = pairs_df.select(
        "as_of_date",
        "reference_as_of_date",
        F.lit("cur").alias("side"),
        F.col("as_of_date").alias("src"),
    ).unionByName(
        pairs_df.select(
            "as_of_date",
            "reference_as_of_date",
            F.lit("ref").alias("side"),
            F.col("reference_as_of_date").alias("src"),
        )
    )
    binned = (
        long.filter(F.col("value").isNotNull())
        .join(F.broadcast(side), F.col("src") == long["as_of_date"])
        .drop(long["as_of_date"])
        .join(edges, ["reference_as_of_date", "feature"])
        .withColumn("bin", F.size(F.filter("edges", lambda e: e < F.col("value"))))
    )
    counts = binned.groupBy("as_of_date", "reference_as_of_date", "feature", "bin").agg(
        F.sum((F.col("side") == "cur").cast("double")).alias("c"),
        F.sum((F.col("side") == "ref").cast("double")).alias("r"),
    )
    w = Window.partitionBy("as_of_date", "reference_as_of_date", "feature")
    shares = counts.select(
        "as_of_date",
        "reference_as_of_date",
        "feature",
        F.greatest(F.col("c") / F.sum("c").over(w), F.lit(PSI_EPS)).alias("a"),
        F.greatest(F.col("r") / F.sum("r").over(w), F.lit(PSI_EPS)).alias("e"),
    )
    psi = shares.groupBy("as_of_date", "reference_as_of_date", "feature").agg(
        F.sum((F.col("a") - F.col("e")) * F.log(F.col("a") / F.col("e"))).alias("psi")
    )
    cur = nulls.alias("c")
    ref = nulls.select(
        F.col("as_of_date").alias("reference_as_of_date"),
        "feature",
        F.col("rows").alias("reference_rows"),
        F.col("null_rate").alias("reference_null_rate"),
    )
    out = (
        pairs_df.join(cur, "as_of_date")
        .join(ref, ["reference_as_of_date", "feature"])
        .join(psi, ["as_of_date", "reference_as_of_date", "feature"], "left")
    )
    psi_flag = F.coalesce(F.col("psi") > cfg.drift_psi_threshold, F.lit(False))
    null_flag = F.abs(F.col("null_rate") - F.col("reference_null_rate")) > F.lit(
        cfg.drift_null_rate_threshold
    )
    reason = F.concat_ws(
        "; ",
        F.when(
            psi_flag,
            F.format_string("psi %.3f > %s", F.col("psi"), F.lit(str(cfg.drift_psi_threshold))),
        ),
        F.when(
            null_flag,
            F.format_string(
                "null rate %.3f -> %.3f", F.col("reference_null_rate"), F.col("null_rate")
            ),
        ),
    )
    return out.select(
        "feature",
        "as_of_date",
        "reference_as_of_date",
        "psi",
        "null_rate",
        "reference_null_rate",
        "rows",
        "reference_rows",
        F.lit(float(cfg.drift_psi_threshold)).alias("psi_threshold"),
        (psi_flag | null_flag).alias("is_flagged"),
        F.when(psi_flag | null_flag, reason).alias("flag_reason"),
        F.current_timestamp().alias("computed_at"),
    )
