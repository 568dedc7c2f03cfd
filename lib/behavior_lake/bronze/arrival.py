"""When a line arrived, from what the lake can trust (rules: docs/arrival-time.md).

Arrival = the message's `receivedAt` when present, else the end of the landing folder's
hour (`<YYYY-MM-DD>/<HH>/`, the arrival hour by contract), else the ingestion time. A
client can write any `receivedAt`, so it never counts later than the folder's hour nor
later than the ingestion: no line can claim to have arrived in the future.

Lateness is arrival - event time, never ingestion - event time, so loading last year's
files today is a backfill with the same outcome as loading them on the day they landed.
"""

from __future__ import annotations

from pyspark.sql import Column
from pyspark.sql import functions as F

from behavior_lake.contracts.codes import ArrivalSource, values

# How arrival_ts was found (silver.events.arrival_source).
ARRIVAL_SOURCES = values(ArrivalSource)


def landing_hour_end(source_file: Column) -> Column:
    """End of the arrival hour a landing path names (`2026-01-05/13/x.jsonl` ->
    2026-01-05 14:00:00 UTC); null for a path outside the layout. The end, not the start:
    a file in folder 13 may have arrived at any time up to 14:00."""
    day = F.substring_index(source_file, "/", 1)
    hour = F.substring_index(F.substring_index(source_file, "/", 2), "/", -1)
    start = F.try_to_timestamp(F.concat(day, F.lit(" "), hour), F.lit("yyyy-MM-dd HH"))
    return F.when(hour.rlike(r"^([01]\d|2[0-3])$"), start + F.expr("INTERVAL 1 HOUR"))


def _upper_bound(source_file: Column, ingested_at: Column) -> Column:
    # least() skips nulls: a path outside the layout leaves the ingestion time.
    return F.least(landing_hour_end(source_file), ingested_at)


def arrival_ts(received_at: Column, source_file: Column, ingested_at: Column) -> Column:
    """Trusted arrival time (see module doc)."""
    upper = _upper_bound(source_file, ingested_at)
    return F.coalesce(F.least(received_at, upper), upper)


def arrival_source(received_at: Column, source_file: Column, ingested_at: Column) -> Column:
    """Which of ARRIVAL_SOURCES `arrival_ts` took (a clamped receivedAt counts as the
    bound it was clamped to)."""
    path_end = landing_hour_end(source_file)
    upper = _upper_bound(source_file, ingested_at)
    from_path = path_end.isNotNull() & (path_end <= ingested_at)
    bound = F.when(from_path, F.lit("landing_path")).otherwise(F.lit("ingested_at"))
    return F.when(received_at.isNotNull() & (received_at <= upper), F.lit("received_at")).otherwise(
        bound
    )


def skew_corrected_ts(received_at: Column, sent_at: Column, original_ts: Column) -> Column:
    """Segment's clock-skew correction: receivedAt - (sentAt - originalTimestamp) (a device
    clock that runs ahead or behind moves sentAt and originalTimestamp alike); null
    unless all three are known."""
    offset_us = F.unix_micros(sent_at) - F.unix_micros(original_ts)
    return F.timestamp_micros(F.unix_micros(received_at) - offset_us)


def clock_skew_seconds(received_at: Column, sent_at: Column) -> Column:
    """Device clock minus server clock at sending (sentAt - receivedAt), in seconds; null
    unless both are known. Positive: the device clock was ahead."""
    return (F.unix_micros(sent_at) - F.unix_micros(received_at)) / F.lit(1_000_000.0)
