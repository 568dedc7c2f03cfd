"""Gold reporting tables: retention cohorts, funnels, paths.

All are pure functions of silver frames, recomputed whole by the gold_kpis job (their
size depends on days, steps and distinct paths, not on events).
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from behavior_lake.config import FunnelSettings, PathSettings
from behavior_lake.contracts.gold import FUNNELS, PATHS, RETENTION_COHORTS  # noqa: F401

FIRST_SEEN = "first_seen"
START, END = "$start", "$end"

# ----------------------------------------------------------------------------- cohorts


def _week(col: str) -> F.Column:
    return F.to_date(F.date_trunc("week", F.col(col)))  # ISO weeks start on Monday


def retention_cohorts(
    events: DataFrame, weeks: int = 12, triggers: Mapping[str, str] | None = None
) -> DataFrame:
    """Weekly retention: cohort = week of first event (and of first `trigger` event).

    Retained in week n = at least one event (any) in the n-th week after the cohort week.
    Weeks that have not started by the last event date are left out; weeks not yet over
    carry is_complete = false.
    """
    activity = events.select("person_id", _week("event_date").alias("week")).distinct()
    cohorts = activity.groupBy("person_id").agg(F.min("week").alias("cohort_week"))
    cohorts = cohorts.withColumn("cohort_type", F.lit(FIRST_SEEN))
    for name, event_name in (triggers or {}).items():
        trig = (
            events.filter(F.col("event_name") == event_name)
            .groupBy("person_id")
            .agg(F.min(_week("event_date")).alias("cohort_week"))
            .withColumn("cohort_type", F.lit(name))
        )
        cohorts = cohorts.unionByName(trig)
    last = events.agg(F.max("event_date").alias("last_date"))
    sizes = cohorts.groupBy("cohort_type", "cohort_week").agg(
        F.count(F.lit(1)).alias("cohort_size")
    )
    spine = (
        sizes.crossJoin(last)
        .withColumn("week_number", F.explode(F.sequence(F.lit(0), F.lit(weeks))))
        .withColumn("week_start", F.date_add("cohort_week", F.col("week_number") * 7))
        .filter(F.col("week_start") <= F.col("last_date"))
    )
    retained = (
        cohorts.join(activity, "person_id")
        .withColumn("week_number", (F.datediff("week", "cohort_week") / 7).cast("int"))
        .filter(F.col("week_number").between(0, weeks))
        .groupBy("cohort_type", "cohort_week", "week_number")
        .agg(F.count(F.lit(1)).alias("retained"))
    )
    out = spine.join(retained, ["cohort_type", "cohort_week", "week_number"], "left")
    got = F.coalesce("retained", F.lit(0).cast("long"))
    return out.select(
        "cohort_type",
        "cohort_week",
        F.col("week_number").cast("int"),
        "cohort_size",
        got.alias("retained"),
        (got / F.col("cohort_size")).alias("retention_rate"),
        (F.date_add("week_start", 6) < F.col("last_date")).alias("is_complete"),
    )


# ----------------------------------------------------------------------------- funnels


def funnel(events: DataFrame, name: str, spec: FunnelSettings) -> DataFrame:
    """One ordered funnel, per entry day.

    Entry: a person's first step-1 event of the day. Step k is reached at the first
    step-k event after (or at) the time step k-1 was reached and within `window_hours`
    of the entry. An entry day is complete once every entry's window has closed before
    the last event seen.
    """
    steps = spec.steps
    window_s = int(spec.window_hours * 3600)
    ev = events.filter(F.col("event_name").isin(list(steps))).select(
        "person_id", "event_name", "event_ts"
    )
    cur = (
        ev.filter(F.col("event_name") == steps[0])
        .groupBy("person_id", F.col("event_ts").cast("date").alias("funnel_date"))
        .agg(F.min("event_ts").alias("t1"))
        .withColumn("deadline", F.col("t1") + F.make_dt_interval(secs=F.lit(window_s)))
    )
    keys = ["person_id", "funnel_date"]
    for k, step in enumerate(steps[1:], start=2):
        hits = ev.filter(F.col("event_name") == step).select(
            "person_id", F.col("event_ts").alias("ts")
        )
        nxt = (
            cur.filter(F.col(f"t{k - 1}").isNotNull())
            .select(*keys, f"t{k - 1}", "deadline")
            .join(hits, "person_id")
            .filter((F.col("ts") >= F.col(f"t{k - 1}")) & (F.col("ts") <= F.col("deadline")))
            .groupBy(*keys)
            .agg(F.min("ts").alias(f"t{k}"))
        )
        cur = cur.join(nxt, keys, "left")
    last_ts = events.agg(F.max("event_ts").alias("last_ts"))
    aggs = [F.count(F.lit(1)).alias("entrants"), F.max("deadline").alias("last_deadline")]
    for k in range(1, len(steps) + 1):
        secs = F.unix_micros(F.col(f"t{k}")) / 1e6 - F.unix_micros(F.col("t1")) / 1e6
        aggs += [
            F.count(f"t{k}").alias(f"n{k}"),
            F.percentile_approx(secs, F.lit(0.5), F.lit(10000)).alias(f"m{k}"),
        ]
    per_day = cur.groupBy("funnel_date").agg(*aggs).crossJoin(last_ts)
    rows = F.array(
        *[
            F.struct(
                F.lit(k).alias("step_index"),
                F.lit(step).alias("step_name"),
                F.col(f"n{k}").alias("persons"),
                (F.col(f"n{k - 1}") if k > 1 else F.col("entrants")).alias("prev"),
                F.col(f"m{k}").cast("double").alias("median_s"),
            )
            for k, step in enumerate(steps, start=1)
        ]
    )
    long = per_day.select(
        "funnel_date",
        "entrants",
        (F.col("last_deadline") <= F.col("last_ts")).alias("is_complete"),
        F.explode(rows).alias("s"),
    )
    return long.select(
        F.lit(name).alias("funnel_name"),
        "funnel_date",
        F.col("s.step_index").cast("int").alias("step_index"),
        F.col("s.step_name").alias("step_name"),
        "entrants",
        F.col("s.persons").alias("persons"),
        F.when(F.col("s.prev") > 0, F.col("s.persons") / F.col("s.prev")).alias("step_conversion"),
        F.when(F.col("entrants") > 0, F.col("s.persons") / F.col("entrants")).alias(
            "overall_conversion"
        ),
        F.col("s.median_s").alias("median_seconds_from_entry"),
        F.lit(float(spec.window_hours)).alias("window_hours"),
        "is_complete",
    )


def funnels(events: DataFrame, specs: Mapping[str, FunnelSettings]) -> DataFrame | None:
    out = None
    for name, spec in sorted(specs.items()):
        df = funnel(events, name, spec)
        out = df if out is None else out.unionByName(df)
    return out


def check_funnels(specs: Mapping[str, FunnelSettings], known_events: set[str]) -> None:
    """Config check: every step names a taxonomy event (snake_case)."""
    for name, spec in specs.items():
        if len(spec.steps) < 2:
            raise ValueError(f"gold.funnels.{name}.steps: expected at least 2 steps")
        bad = [s for s in spec.steps if s not in known_events]
        if bad:
            raise ValueError(
                f"gold.funnels.{name}.steps: unknown event(s) {bad}; expected snake_case "
                "taxonomy event names"
            )
        if spec.window_hours <= 0:
            raise ValueError(f"gold.funnels.{name}.window_hours: expected a positive number")


# ----------------------------------------------------------------------------- paths


def session_sequences(events: DataFrame) -> DataFrame:
    """One row per session: its event names in time order (one shuffle, no window)."""
    return (
        events.groupBy("session_id")
        .agg(
            F.array_sort(F.collect_list(F.struct("event_ts", "message_id", "event_name"))).alias(
                "evs"
            ),
            F.min("event_date").alias("first_date"),
            F.max("event_date").alias("last_date"),
        )
        .select("session_id", F.col("evs.event_name").alias("names"), "first_date", "last_date")
    )


def paths(events: DataFrame, cfg: PathSettings) -> DataFrame:
    """First-order transitions ($start/$end included) and the top session paths."""
    seq = session_sequences(events).cache()
    # transitions: ($start, e1), (e1, e2), ..., (en, $end)
    padded = F.concat(F.array(F.lit(START)), F.col("names"), F.array(F.lit(END)))
    pairs = seq.select(padded.alias("p"), "first_date", "last_date").select(
        F.explode(
            F.expr(
                "transform(sequence(0, size(p) - 2), i -> named_struct('f', p[i], 't', p[i + 1]))"
            )
        ).alias("pair"),
        "first_date",
        "last_date",
    )
    trans = pairs.groupBy(
        F.col("pair.f").alias("from_event"), F.col("pair.t").alias("to_event")
    ).agg(
        F.count(F.lit(1)).alias("count"),
        F.min("first_date").alias("first_date"),
        F.max("last_date").alias("last_date"),
    )
    by_from = Window.partitionBy("from_event")
    trans = trans.select(
        F.lit("transition").alias("kind"),
        "from_event",
        "to_event",
        F.lit(None).cast("string").alias("path"),
        F.lit(None).cast("int").alias("steps"),
        "count",
        (F.col("count") / F.sum("count").over(by_from)).alias("probability"),
        F.row_number()
        .over(by_from.orderBy(F.desc("count"), F.asc("to_event")))
        .cast("int")
        .alias("rank"),
        "first_date",
        "last_date",
    )
    names = F.col("names")
    if cfg.collapse_repeats:
        names = F.expr("filter(names, (x, i) -> i = 0 OR x != names[i - 1])")
    truncated = seq.select(names.alias("c"), "first_date", "last_date").select(
        F.concat_ws(" > ", F.slice("c", 1, cfg.max_steps)).alias("path0"),
        F.least(F.size("c"), F.lit(cfg.max_steps)).alias("steps"),
        (F.size("c") > cfg.max_steps).alias("more"),
        "first_date",
        "last_date",
    )
    truncated = truncated.withColumn(
        "path", F.when(F.col("more"), F.concat("path0", F.lit(" > ..."))).otherwise(F.col("path0"))
    )
    total = Window.partitionBy(F.lit(1))
    top = (
        truncated.groupBy("path", "steps")
        .agg(
            F.count(F.lit(1)).alias("count"),
            F.min("first_date").alias("first_date"),
            F.max("last_date").alias("last_date"),
        )
        .withColumn("probability", F.col("count") / F.sum("count").over(total))
        .withColumn(
            "rank",
            F.row_number().over(total.orderBy(F.desc("count"), F.asc("path"))).cast("int"),
        )
        .filter(F.col("rank") <= cfg.top_n)
    )
    top = top.select(
        F.lit("top_path").alias("kind"),
        F.lit(None).cast("string").alias("from_event"),
        F.lit(None).cast("string").alias("to_event"),
        "path",
        F.col("steps").cast("int"),
        "count",
        "probability",
        "rank",
        "first_date",
        "last_date",
    )
    return trans.unionByName(top)
