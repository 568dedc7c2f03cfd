"""Per-person metric values after exposure, per analysis date, summed per variation.

Every analysis date ("look") from an experiment's first exposure to the end of the data
gets the sums a two-sample test needs (n, sum y, sum y^2, the covariate's sums and
cross products, a ratio's denominator sums), so the driver computes every estimate from
a few hundred rows. A person counts at a look once their window has begun (or, for
`full_window` metrics, ended) by the end of that date; what they did after it is not
seen yet. Activity is counted in [exposure + from_day, exposure + to_day) days.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from behavior_lake.config import ExperimentMetric
from behavior_lake.experiments.exposures import EXPOSURE_EVENT

UNIT = ["experiment_id", "variation_id", "person_id", "exposure_ts", "exposure_date"]
SUMS = ("n", "sum_y", "sum_y2", "sum_x", "sum_x2", "sum_xy", "sum_d", "sum_d2", "sum_yd")
DAY_MICROS = 86_400_000_000.0


def activity(events: DataFrame, sessions: DataFrame) -> DataFrame:
    """Events (exposure events left out: they are the instrument, not behaviour) and
    session starts as one frame: person_id, ts, event_name, revenue, is_session."""
    ev = events.filter(F.col("event_name") != EXPOSURE_EVENT).select(
        "person_id",
        F.col("event_ts").alias("ts"),
        "event_name",
        F.col("revenue").cast("double").alias("revenue"),
        F.lit(False).alias("is_session"),
    )
    ss = sessions.select(
        "person_id",
        F.col("session_start_ts").alias("ts"),
        F.lit(None).cast("string").alias("event_name"),
        F.lit(None).cast("double").alias("revenue"),
        F.lit(True).alias("is_session"),
    )
    return ev.unionByName(ss)


def _end(m: ExperimentMetric, window_days: int) -> int:
    return m.to_day or window_days


def _contribution(measure: str, event: str, in_window: Column) -> Column:
    is_event = ~F.col("is_session")
    if event:
        is_event = is_event & (F.col("event_name") == event)
    if measure == "revenue":
        return F.when(in_window & is_event, F.coalesce(F.col("revenue"), F.lit(0.0))).otherwise(0.0)
    hit = in_window & (F.col("is_session") if measure == "sessions" else is_event)
    return F.when(hit, F.lit(1.0)).otherwise(F.lit(0.0))


def _agg(measure: str, col: Column) -> Column:
    # active_days: a day counts once however many events it holds
    return F.max(col) if measure == "active_days" else F.sum(col)


def unit_days(
    units: DataFrame,
    acts: DataFrame,
    metrics: Mapping[str, ExperimentMetric],
    window_days: int,
) -> DataFrame:
    """One row per unit and activity date: each metric's numerator (`<m>__y`) and
    ratio denominator (`<m>__d`) from what the person did in the metric's window."""
    longest = max(_end(m, window_days) for m in metrics.values())
    offset = (F.unix_micros("ts") - F.unix_micros("exposure_ts")) / F.lit(DAY_MICROS)
    joined = units.join(acts, "person_id").filter(
        (F.col("ts") >= F.col("exposure_ts")) & (offset < longest)
    )
    joined = joined.withColumn("_offset", offset).withColumn("activity_date", F.to_date("ts"))
    aggs = []
    for name, m in metrics.items():
        in_window = (F.col("_offset") >= m.from_day) & (F.col("_offset") < _end(m, window_days))
        aggs.append(
            _agg(m.measure, _contribution(m.measure, m.event, in_window)).alias(f"{name}__y")
        )
        if m.kind == "ratio":
            den = _contribution(m.denominator, "", in_window)
            aggs.append(_agg(m.denominator, den).alias(f"{name}__d"))
    return joined.groupBy(*UNIT, "activity_date").agg(*aggs)


def looks(units: DataFrame, end: date) -> DataFrame:
    """experiment_id, analysis_date: every date from the first exposure to `end`."""
    first = units.groupBy("experiment_id").agg(F.min("exposure_date").alias("lo"))
    return first.filter(F.col("lo") <= F.lit(end)).select(
        "experiment_id", F.explode(F.sequence("lo", F.lit(end))).alias("analysis_date")
    )


def covariates(units: DataFrame, features: DataFrame | None, names: list[str]) -> DataFrame:
    """Each unit's covariates from its last gold.user_features snapshot on or before
    the exposure date (features count days strictly before as_of_date, so nothing
    after exposure leaks in); 0 for persons without a snapshot yet (new persons; both
    variations alike), and for everyone when there are no features yet."""
    base = units.select(*UNIT)
    if features is None:
        return base.select("*", *[F.lit(0.0).alias(c) for c in names])
    snap = features.select("person_id", "as_of_date", *names)
    pit = (
        units.select("experiment_id", "person_id", "exposure_date")
        .join(snap, "person_id")
        .filter(F.col("as_of_date") <= F.col("exposure_date"))
        .groupBy("experiment_id", "person_id")
        .agg(F.max(F.struct("as_of_date", *names)).alias("s"))
        .select("experiment_id", "person_id", *[F.col(f"s.{c}").alias(c) for c in names])
    )
    joined = base.join(pit, ["experiment_id", "person_id"], "left")
    return joined.fillna(0.0, subset=names)


def per_look(
    units: DataFrame,
    days: DataFrame,
    look_dates: DataFrame,
    covs: DataFrame,
    metrics: Mapping[str, ExperimentMetric],
) -> DataFrame:
    """One row per unit and analysis date on or after its exposure date, with every
    metric's cumulative value (zero when the person did nothing)."""
    value_cols = [c for c in days.columns if "__" in c]
    sums = (
        days.join(look_dates, "experiment_id")
        .filter(F.col("activity_date") <= F.col("analysis_date"))
        .groupBy(*UNIT, "analysis_date")
        .agg(*[F.sum(c).alias(c) for c in value_cols])
    )
    spine = units.join(look_dates, "experiment_id").filter(
        F.col("analysis_date") >= F.col("exposure_date")
    )
    out = spine.join(sums, [*UNIT, "analysis_date"], "left").fillna(0.0, subset=value_cols)
    return out.join(covs, UNIT, "left")


def metric_sums(
    values: DataFrame, metrics: Mapping[str, ExperimentMetric], window_days: int
) -> DataFrame:
    """experiment_id, analysis_date, variation_id, metric and the SUMS over the persons
    the metric counts at that date."""
    rows = []
    for name, m in metrics.items():
        y = F.col(f"{name}__y")
        if m.kind == "proportion":
            y = (y > 0).cast("double")
        d = F.col(f"{name}__d") if m.kind == "ratio" else F.lit(0.0)
        x = F.col(m.covariate).cast("double") if m.covariate else F.lit(0.0)
        since = F.datediff(F.col("analysis_date"), F.col("exposure_date"))
        counted = since >= (_end(m, window_days) if m.full_window else m.from_day)
        rows.append(
            F.struct(
                F.lit(name).alias("metric"),
                counted.alias("counted"),
                y.alias("y"),
                x.alias("x"),
                d.alias("d"),
            )
        )
    long = values.select(
        "experiment_id", "analysis_date", "variation_id", F.explode(F.array(*rows)).alias("r")
    ).filter(F.col("r.counted"))
    y, x, d = F.col("r.y"), F.col("r.x"), F.col("r.d")
    return long.groupBy(
        "experiment_id", "analysis_date", "variation_id", F.col("r.metric").alias("metric")
    ).agg(
        F.count(F.lit(1)).alias("n"),
        F.sum(y).alias("sum_y"),
        F.sum(y * y).alias("sum_y2"),
        F.sum(x).alias("sum_x"),
        F.sum(x * x).alias("sum_x2"),
        F.sum(x * y).alias("sum_xy"),
        F.sum(d).alias("sum_d"),
        F.sum(d * d).alias("sum_d2"),
        F.sum(y * d).alias("sum_yd"),
    )


def split_counts(units: DataFrame, look_dates: DataFrame) -> DataFrame:
    """Persons per experiment, analysis date and variation (for the sample-ratio test)."""
    spine = units.join(look_dates, "experiment_id").filter(
        F.col("analysis_date") >= F.col("exposure_date")
    )
    return spine.groupBy("experiment_id", "analysis_date", "variation_id").agg(
        F.count(F.lit(1)).alias("persons")
    )
