"""Inactivity-timeout sessions per person across devices (window functions only).

A new session starts when the gap since the person's previous event exceeds the
timeout. A run longer than `max_session_hours` is cut into consecutive slices of
that length measured from its start (`is_split`). Sessions crossing midnight stay
whole and are dated by their start. `session_id` = first 32 hex of
sha256(person_id | start), so the same events always give the same ids.

Per event (`with_session_id`): one shuffle by person and one sort by (event_ts,
message_id); every window below shares that partitioning and order, so Spark stacks
them on the sorted rows without another exchange or sort. The id is hashed once per
session (at its first event) and carried forward, not once per event.

`sessions` (silver.sessions straight from stored events) and `session_spans` (one
row per session from any (person_id, event_ts) frame) shuffle buckets, not events
(`sessions_by_bucket`): a person's events in one timeout-wide bucket of epoch seconds
always share a run, so Spark aggregates them before the exchange and the windows and
the per-session grouping run on buckets (4.19M events -> 348k buckets -> 258k
sessions). The silver job keeps `with_session_id`: silver.events needs the id on every
event, and its events are already shuffled and sorted by person there.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

ORDER = ("event_ts", "message_id")
_TS_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSSSS"


def _session_id(ts_col: str) -> Column:
    """First 32 hex of sha256(person_id | start)."""
    text = F.concat_ws("|", F.col("person_id"), F.date_format(ts_col, _TS_FORMAT))
    return F.substring(F.sha2(text, 256), 1, 32)


def with_session_slices(events: DataFrame, timeout_minutes: int, max_hours: int) -> DataFrame:
    """Window levels 1-2: `_run_start` (long seconds), `_slice` (0, 1, ... within the
    run), `_new_session` and `is_split` on every event (ordered by ORDER: one of two
    same-time events is the session's start)."""
    by_person = Window.partitionBy("person_id").orderBy(*ORDER)
    so_far = by_person.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    ts = F.col("event_ts").cast("long")
    timeout, slice_s = timeout_minutes * 60, max_hours * 3600
    # level 1: neighbours
    step = events.withColumns(
        {
            "_prev": F.lag(ts).over(by_person),
            "_next": F.lead(ts).over(by_person),
        }
    )
    run_starts = F.col("_prev").isNull() | (ts - F.col("_prev") > timeout)
    # level 2: start of the current run = latest run start so far (times only grow)
    step = step.withColumns(
        {"_run_start": F.max(F.when(run_starts, ts)).over(so_far), "_run_starts": run_starts}
    )
    slice_of = lambda t: F.floor((t - F.col("_run_start")) / slice_s)  # noqa: E731
    slice_ = slice_of(ts)
    continues = F.col("_next").isNotNull() & (F.col("_next") - ts <= timeout)
    return step.withColumns(
        {
            "_slice": slice_,
            "_new_session": F.col("_run_starts") | (slice_ != slice_of(F.col("_prev"))),
            "is_split": (slice_ > 0) | (continues & (slice_of(F.col("_next")) != slice_)),
        }
    ).drop("_prev", "_next", "_run_starts")


def with_session_id(events: DataFrame, timeout_minutes: int, max_hours: int) -> DataFrame:
    """Add session_id, session_start_ts and is_split to every event.

    `is_split` on an event marks that its session belongs to a run cut into slices
    (the event lies in a later slice, or the run goes on past the event's slice);
    `sessions_from_events` takes its maximum per session.
    """
    so_far = (
        Window.partitionBy("person_id")
        .orderBy(*ORDER)
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    step = with_session_slices(events, timeout_minutes, max_hours)
    # level 3: (start, id) of the latest session start so far, hashed only at starts
    at_start = F.struct(F.col("event_ts").alias("ts"), _session_id("event_ts").alias("id"))
    first = F.max(F.when(F.col("_new_session"), at_start)).over(so_far)
    return (
        step.withColumn("_first", first)
        .withColumns({"session_start_ts": F.col("_first.ts"), "session_id": F.col("_first.id")})
        .drop("_run_start", "_slice", "_new_session", "_first")
    )


def session_facts(events: DataFrame) -> DataFrame:
    """The per-event columns silver.sessions needs, with the event type, name and
    revenue reduced to `_view`, `_conv` and `_conv_revenue` (any session columns kept)."""
    conv = F.col("event_name") == "order_completed"
    carried = [c for c in ("session_id", "session_start_ts", "is_split") if c in events.columns]
    return events.select(
        "person_id",
        "event_ts",
        "message_id",
        "page_path",
        "platform",
        F.col("event_type").isin("page", "screen").alias("_view"),
        conv.alias("_conv"),
        F.when(conv, F.col("revenue")).alias("_conv_revenue"),
        *carried,
    )


def sessions(
    events: DataFrame, timeout_minutes: int, max_hours: int, engaged_min_seconds: int
) -> DataFrame:
    """silver.sessions rows from events without session ids (`sessions_by_bucket`). The
    same sessions and ids as `sessions_from_events(with_session_id(...))`."""
    agg = sessions_by_bucket(session_facts(events), timeout_minutes, max_hours, _facts())
    return _session_rows(
        _named(agg).withColumn("session_id", _session_id("session_start_ts")),
        engaged_min_seconds,
    )


def session_spans(events: DataFrame, timeout_minutes: int, max_hours: int) -> DataFrame:
    """One row per session from (person_id, event_ts) alone: person_id, session_id,
    session_start_ts, session_end_ts, event_count, is_split (as in silver.sessions)."""
    agg = sessions_by_bucket(events, timeout_minutes, max_hours, [])
    return agg.select(
        "person_id",
        _session_id("_lo").alias("session_id"),
        F.col("_lo").alias("session_start_ts"),
        F.col("_hi").alias("session_end_ts"),
        F.col("_n").alias("event_count"),
        "is_split",
    )


# A per-session aggregate that merges across parts of a session: (name, F.min / F.max /
# F.sum, per-event value).
Fact = tuple[str, Callable[[Column], Column], Column]


def _core() -> list[Fact]:
    """First and last time and the event count: every session needs them."""
    return [
        ("_lo", F.min, F.col("event_ts")),
        ("_hi", F.max, F.col("event_ts")),
        ("_n", F.sum, F.lit(1).cast("long")),
    ]


def _facts() -> list[Fact]:
    """What silver.sessions needs per session beyond times and counts."""
    key = [F.col(c) for c in ORDER]
    with_page = F.col("page_path").isNotNull()
    return [
        ("page_count", F.sum, F.col("_view").cast("long")),
        ("_entry", F.min, F.when(with_page, F.struct(*key, F.col("page_path")))),
        ("_exit", F.max, F.when(with_page, F.struct(*key, F.col("page_path")))),
        ("_conv_any", F.max, F.col("_conv").cast("int")),
        ("revenue", F.sum, F.col("_conv_revenue")),
        ("_first", F.min, F.struct(*key, F.col("platform"))),
    ]


def _named(agg: DataFrame) -> DataFrame:
    """Aggregated `_core` + `_facts` columns under the names `_session_rows` reads."""
    return agg.select(
        "person_id",
        *[c for c in ("session_id",) if c in agg.columns],
        F.col("_lo").alias("session_start_ts"),
        F.col("_hi").alias("session_end_ts"),
        F.col("_n").alias("event_count"),
        "page_count",
        F.col("_entry.page_path").alias("entry_page"),
        F.col("_exit.page_path").alias("exit_page"),
        F.col("_conv_any").alias("_conv"),
        "revenue",
        F.col("_first.platform").alias("platform"),
        F.col("is_split").cast("int").alias("_split"),
    )


def sessions_by_bucket(
    events: DataFrame, timeout_minutes: int, max_hours: int, facts: list[Fact]
) -> DataFrame:
    """One row per session: person_id, `_run_start` (long seconds), `_slice`, `_lo` /
    `_hi` (first / last event_ts), `_n` (events), `is_split` and one column per fact.

    Why it is exact: the person's events in one `timeout`-wide bucket of epoch seconds
    (floor(seconds / timeout)) are less than the timeout apart, so no inactivity gap
    falls inside a bucket: all of it belongs to one run. Spark aggregates the buckets
    where the events are read (partial aggregation before the exchange), so the shuffle,
    sort and windows see buckets, not events. Two window levels over a person's buckets
    (ordered by bucket) find each bucket's run start and slice as `with_session_slices`
    does per event (a gap runs from a bucket's last second to the next one's first), and
    the buckets are grouped per (person, run start, slice) in the same stage. A bucket
    that a slice boundary (run start + k * max_hours) cuts -- possible only in runs longer
    than `max_hours` -- is left out of that grouping; when there is any, its events are
    read again (broadcast join with the cut buckets, at most one per session), regrouped
    per slice and merged in.

    Eager: the sessions are materialized once (a local checkpoint, freed with the
    returned frame) and checked for cut buckets, so without any the events are read once.
    """
    timeout, slice_s = timeout_minutes * 60, max_hours * 3600
    ts = F.col("event_ts").cast("long")
    aggs = [*_core(), *facts]
    bucketed = events.withColumn("_bucket", F.floor(ts / timeout))
    buckets = bucketed.groupBy("person_id", "_bucket").agg(
        *[op(value).alias(name) for name, op, value in aggs]
    )
    by_person = Window.partitionBy("person_id").orderBy("_bucket")
    so_far = by_person.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    lo, hi = F.col("_lo").cast("long"), F.col("_hi").cast("long")
    step = buckets.withColumns(
        {"_prev": F.lag(hi).over(by_person), "_next": F.lead(lo).over(by_person)}
    )
    run_starts = F.col("_prev").isNull() | (lo - F.col("_prev") > timeout)
    step = step.withColumn("_run_start", F.max(F.when(run_starts, lo)).over(so_far))
    slice_of = lambda t: F.floor((t - F.col("_run_start")) / slice_s)  # noqa: E731
    continues = F.col("_next").isNotNull() & (F.col("_next") - hi <= timeout)
    step = step.withColumns(
        {
            "_slice": slice_of(lo),
            "_cut": slice_of(lo) != slice_of(hi),
            # the run goes on into another slice (per event: the max over the bucket)
            # (a cut bucket has slice_of(hi) > 0 already)
            "is_split": (slice_of(hi) > 0)
            | (continues & (slice_of(F.col("_next")) != slice_of(hi))),
        }
    )
    whole = ~F.col("_cut")
    keys = ["person_id", "_run_start", "_slice"]
    grouped = (
        step.groupBy(*keys)
        .agg(
            *[op(F.when(whole, F.col(name))).alias(name) for name, op, _ in aggs],
            F.max("is_split").alias("is_split"),
            # buckets are disjoint in time: only one holds the boundary after a slice
            F.max(F.when(F.col("_cut"), F.col("_bucket"))).alias("_cut_bucket"),
        )
        .localCheckpoint()
    )
    with_cut = grouped.filter(F.col("_cut_bucket").isNotNull())
    if with_cut.isEmpty():
        return grouped.drop("_cut_bucket")
    # a cut bucket lies in a run of two slices or more: every session of that run is split
    cut = with_cut.select("person_id", F.col("_cut_bucket").alias("_bucket"), "_run_start")
    regrouped = (
        bucketed.join(F.broadcast(cut), ["person_id", "_bucket"], how="inner")
        .withColumn("_slice", slice_of(ts))
        .groupBy(*keys)
        .agg(*[op(value).alias(name) for name, op, value in aggs])
        .withColumn("is_split", F.lit(True))
    )
    parts = grouped.filter(F.col("_n").isNotNull()).drop("_cut_bucket").unionByName(regrouped)
    return parts.groupBy(*keys).agg(
        *[op(name).alias(name) for name, op, _ in aggs], F.max("is_split").alias("is_split")
    )


def sessions_from_events(events: DataFrame, engaged_min_seconds: int) -> DataFrame:
    """silver.sessions rows from events that carry session_id/session_start_ts/is_split
    (whole silver events, or `session_facts` of them)."""
    if "_view" not in events.columns:
        events = session_facts(events)
    # session_start_ts before session_id: the rows' existing (person, time) order.
    agg = events.groupBy("person_id", "session_start_ts", "session_id").agg(
        *[op(value).alias(name) for name, op, value in [*_core(), *_facts()]],
        F.max("is_split").alias("is_split"),
    )
    return _session_rows(_named(agg.drop("session_start_ts")), engaged_min_seconds)


def _session_rows(agg: DataFrame, engaged_min_seconds: int) -> DataFrame:
    duration = F.col("session_end_ts").cast("double") - F.col("session_start_ts").cast("double")
    return agg.select(
        "session_id",
        "person_id",
        F.to_date("session_start_ts").alias("session_date"),
        "session_start_ts",
        "session_end_ts",
        duration.alias("duration_s"),
        "event_count",
        "page_count",
        "entry_page",
        "exit_page",
        (F.col("event_count") == 1).alias("is_bounce"),
        (
            (duration >= engaged_min_seconds) | (F.col("page_count") >= 2) | (F.col("_conv") == 1)
        ).alias("is_engaged"),
        (F.col("_conv") == 1).alias("has_conversion"),
        F.coalesce(F.col("revenue"), F.lit(0).cast("decimal(18,2)"))
        .cast("decimal(18,2)")
        .alias("revenue"),
        "platform",
        (F.col("_split") == 1).alias("is_split"),
    )
