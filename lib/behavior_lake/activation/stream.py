"""The activation stream: two Structured Streaming queries over the lake.

1. events: landing files (or Kafka) -> the bronze and silver rules of the batch pipeline,
   applied per micro-batch (classify_lines, erasure suppression, identity, conform) ->
   `activation.stream_events` (insert-only MERGE on message_id: a replayed micro-batch or
   a message seen before adds nothing, so a restart neither loses nor duplicates).
2. decisions: `activation.stream_events` (Delta source) + the latest gold scores,
   segments and erasure list (stream-static join) -> per-person state and event-time
   timers (transformWithStateInPandas, `DecisionProcessor`) -> `activation.decisions`
   (insert-only MERGE on decision_id) and profile fields in Redis.

Checkpoints under activation.checkpoint_dir make both exactly-once end to end.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T
from pyspark.sql.streaming import StatefulProcessor, StatefulProcessorHandle, StreamingQuery

from behavior_lake.activation.engine import Engine, Event, decision_rows, dump_state, load_state
from behavior_lake.activation.inputs import (
    engine_rows,
    erased_ids,
    event_value,
    person_facts,
    with_facts,
)
from behavior_lake.bronze.arrival import landing_hour_end
from behavior_lake.bronze.ingest import _BATCH_COLS, classify_with, line_columns, suppress_erased
from behavior_lake.config import ActivationSettings, Settings
from behavior_lake.contracts.activation import DECISIONS, STREAM_EVENTS
from behavior_lake.contracts.bronze import BRONZE_EVENTS
from behavior_lake.contracts.silver import IDENTITY_MAP
from behavior_lake.contracts.taxonomy import Taxonomy
from behavior_lake.lake.base import Lake
from behavior_lake.privacy.pseudonym import is_junk_id
from behavior_lake.silver.conform import conform
from behavior_lake.silver.identity import identity_links, with_person

log = logging.getLogger(__name__)

RULE_STATE = "person"
_OUT_TYPES = {"string": T.StringType(), "int": T.IntegerType(), "long": T.LongType(),
              "boolean": T.BooleanType(), "double": T.DoubleType()}  # fmt: skip
# What the processor emits: decision rows and one profile row per person and batch.
OUTPUT = T.StructType(
    [
        T.StructField(name, _OUT_TYPES[typ])
        for name, typ in (
            c.split()
            for c in (
                "kind string, person_id string, decision_id string, rule_id string, "
                "rule_version int, campaign string, channel string, trigger string, "
                "decision_ts_ms long, outcome string, reason string, inputs string, "
                "payload string, landed_ms long, decided_ms long, last_event_ms long, "
                "cart_open boolean, cart_value double, last_actions string, consents string"
            ).split(", ")
        )
    ]
)


def checkpoint_root(settings: Settings) -> str:
    a = settings.activation
    return a.checkpoint_dir or f"{settings.lake.root}/_checkpoints/activation"


# ---------------------------------------------------------------------- 1. events


def stream_event_rows(
    lake: Lake, lines: DataFrame, settings: Settings, taxonomy: Taxonomy, batch_id: int
) -> DataFrame:
    """One micro-batch of landed lines -> activation.stream_events rows, through the
    same rules as bronze and silver (rows they would not keep are not kept here)."""
    s, key = settings.silver, settings.privacy.pseudonym_key
    classified = classify_with(settings, lines)
    classified = suppress_erased(lake, classified, key)
    now = F.current_timestamp()
    cols = [c for c in BRONZE_EVENTS.schema.fieldNames() if c not in _BATCH_COLS]
    bronze = classified.filter(F.col("_outcome") == "bronze").select(
        *cols,
        "landed_at",
        F.lit(f"stream-{batch_id}").alias("ingest_batch_id"),
        now.alias("ingested_at"),
        F.to_date(now).alias("ingest_date"),
    )
    resolved = _with_person(lake, bronze, settings)
    kept = conform(resolved, taxonomy, s, s.kept_context_fields).filter(
        F.col("_status") == "silver"
    )
    return kept.select(
        *[
            event_value().alias(f.name)
            if f.name == "value"
            else F.lit(batch_id).cast("long").alias(f.name)
            if f.name == "stream_batch_id"
            else F.col(f.name)
            for f in STREAM_EVENTS.schema.fields
        ]
    )


def _with_person(lake: Lake, bronze: DataFrame, settings: Settings) -> DataFrame:
    """person_id as silver would give it: links seen in the micro-batch, overridden by
    silver.identity_map (the batch pipeline's long memory of who an anonymous id is)."""
    key, s = settings.privacy.pseudonym_key, settings.silver
    resolved = with_person(bronze, identity_links(bronze, s.max_ids_per_person), key)
    if not lake.exists(IDENTITY_MAP.name):
        return resolved
    known = lake.read(IDENTITY_MAP.name).select(
        "anonymous_id_hash", F.col("person_id").alias("_mapped")
    )
    return (
        resolved.join(known, "anonymous_id_hash", "left")
        .withColumn(
            "person_id",
            F.when(
                is_junk_id(F.col("user_id")) & F.col("_mapped").isNotNull(), F.col("_mapped")
            ).otherwise(F.col("person_id")),
        )
        .drop("_mapped")
    )


def landing_stream(spark: SparkSession, settings: Settings) -> DataFrame:
    """The stream's source as line rows like the batch reader's (`raw_line`, `source_file`,
    line bytes) plus `landed_at`: the landing folder as a file stream, or a Kafka topic."""
    a = settings.activation
    if a.source == "kafka":
        raw = (
            spark.readStream.format("kafka")
            .option("kafka.bootstrap.servers", a.kafka_bootstrap)
            .option("subscribe", a.kafka_topic)
            .option("startingOffsets", a.kafka_starting_offsets)
            .option("maxOffsetsPerTrigger", a.max_offsets_per_trigger)
            .load()
        )
        return kafka_lines(raw)
    raw = (
        spark.readStream.format("text")
        .option("maxFilesPerTrigger", a.max_files_per_trigger)
        .option("pathGlobFilter", "*.jsonl*")
        .option("recursiveFileLookup", "true")
        .load(settings.landing.root)
    )
    landed = F.col("_metadata.file_modification_time").alias("landed_at")
    return line_columns(raw.select("value", "_metadata")).withColumn("landed_at", landed)


def kafka_lines(records: DataFrame) -> DataFrame:
    """Kafka records (key, value, topic, partition, timestamp) -> line rows. One record is
    one landing line. A record keyed by a landing path (<date>/<hour>/<file>, as a forwarder
    of landing files sends them) keeps that path as its source file, so its arrival bound
    is the batch pipeline's; any other record (keyed by user, or not at all) is filed under
    the UTC hour Kafka stamped it: <date>/<hour>/kafka-<topic>-<partition>. `landed_at` is
    the record's Kafka timestamp."""
    key = F.col("key").cast("string")
    ts = F.col("timestamp")
    own = F.concat_ws(
        "/",
        F.date_format(ts, "yyyy-MM-dd"),
        F.date_format(ts, "HH"),
        F.concat(F.lit("kafka-"), F.col("topic"), F.lit("-"), F.col("partition").cast("string")),
    )
    path = F.when(landing_hour_end(key).isNotNull(), key).otherwise(own)
    lines = records.select(
        F.col("value").cast("string").alias("value"),
        path.alias("_path"),
        ts.alias("landed_at"),
    )
    return line_columns(lines, F.col("_path"), keep=["landed_at"])


def start_events(
    lake: Lake, settings: Settings, taxonomy: Taxonomy, *, available_now: bool = False
) -> StreamingQuery:
    lake.ensure(STREAM_EVENTS.name)
    lines = landing_stream(lake.spark, settings)

    def write(batch: DataFrame, batch_id: int) -> None:
        t0 = time.monotonic()
        # computed once: the MERGE's key check and its join would each recompute the rules
        rows = stream_event_rows(lake, batch, settings, taxonomy, batch_id).persist()
        try:
            result = lake.merge(STREAM_EVENTS.name, rows, ["message_id"], update_existing=False)
        finally:
            rows.unpersist()
        log.info(
            "stream events batch %d: %d new event(s) in %.1fs",
            batch_id,
            result.rows_written,
            time.monotonic() - t0,
        )

    return _start(lines, write, settings, "events", available_now)


# ---------------------------------------------------------------------- 2. decisions


def _event(r: Any) -> Event:
    return Event(
        message_id=r.message_id,
        event=r.event or "",
        ts_ms=int(r.ts_ms),
        value=None if pd.isna(r.value) else float(r.value),
        consents=json.loads(r.consents) if isinstance(r.consents, str) else {},
        churn_probability=None if pd.isna(r.churn_probability) else float(r.churn_probability),
        segment_id=None if pd.isna(r.segment_id) else int(r.segment_id),
        segment_name=None if pd.isna(r.segment_name) else r.segment_name,
        erased=bool(r.erased) if not pd.isna(r.erased) else False,
        landed_ms=None if pd.isna(r.landed_ms) else int(r.landed_ms),
    )


def run_person(
    engine: Engine, state: dict[str, Any], person: str, rows: pd.DataFrame
) -> list[dict[str, Any]]:
    """The person's rows in event-time order through the engine (stream and replay)."""
    out: list[dict[str, Any]] = []
    for r in rows.sort_values(["ts_ms", "message_id"]).itertuples(index=False):
        out += decision_rows(engine.on_event(state, person, _event(r)))
    return out


def output_frame(
    person: str, decisions: list[dict[str, Any]], state: dict[str, Any] | None
) -> pd.DataFrame:
    """Decision rows, plus one profile row (state is None: none)."""
    now = int(time.time() * 1000)
    rows = [{"kind": "decision", **d, "decided_ms": now} for d in decisions]
    if state is not None:
        rows.append(
            {
                "kind": "profile",
                "person_id": person,
                "decided_ms": now,
                "last_event_ms": state["last_ms"],
                "cart_open": bool(state["cart_open"]),
                "cart_value": float(state["cart_value"]),
                "last_actions": json.dumps(state["last_action"], sort_keys=True),
                "consents": json.dumps(state["consents"], sort_keys=True),
            }
        )
    frame = pd.DataFrame(rows, columns=OUTPUT.fieldNames())
    for f in OUTPUT.fields:  # absent values are None (a NaN does not convert to a string)
        if isinstance(f.dataType, T.StringType | T.BooleanType):
            col = frame[f.name].astype(object)
            frame[f.name] = col.where(col.notna(), None)
    return frame


class DecisionProcessor(StatefulProcessor):
    """Per person: the engine's state (one JSON value) and event-time timers for the
    pending timer rules and for dropping idle state."""

    def __init__(self, settings: ActivationSettings, session_gap_minutes: int = 30) -> None:
        self.settings, self.session_gap_minutes = settings, session_gap_minutes

    def init(self, handle: StatefulProcessorHandle) -> None:
        self.handle = handle
        self.state = handle.getValueState(RULE_STATE, "state string")
        self.engine = Engine(self.settings, self.session_gap_minutes)
        self.idle_ms = self.settings.state_idle_days * 86_400_000

    def _load(self) -> dict[str, Any]:
        return load_state(self.state.get()[0] if self.state.exists() else None)

    def _save(self, state: dict[str, Any]) -> None:
        self.state.update((dump_state(state),))
        for t in list(self.handle.listTimers()):
            self.handle.deleteTimer(t)
        nxt = self.engine.next_deadline(state)
        if nxt is not None:
            self.handle.registerTimer(nxt)
        if state["last_ms"] is not None:
            self.handle.registerTimer(state["last_ms"] + self.idle_ms)

    def handleInputRows(self, key, rows, timerValues) -> Iterator[pd.DataFrame]:
        person = key[0]
        state = self._load()
        frame = pd.concat(list(rows), ignore_index=True)
        out = run_person(self.engine, state, person, frame)
        self._save(state)
        yield output_frame(person, out, state)

    def handleExpiredTimer(self, key, timerValues, expiredTimerInfo) -> Iterator[pd.DataFrame]:
        person = key[0]
        state = self._load()
        expiry = expiredTimerInfo.getExpiryTimeInMs()
        out = decision_rows(self.engine.on_deadline(state, person, expiry))
        if not state["pending"] and (state["last_ms"] or 0) + self.idle_ms <= expiry:
            self.state.clear()
            for t in list(self.handle.listTimers()):
                self.handle.deleteTimer(t)
        else:
            self._save(state)
        yield output_frame(person, out, state if out else None)

    def close(self) -> None:
        pass


def decision_frame(out: DataFrame, source: str) -> DataFrame:
    """Processor output (kind = decision) -> activation.decisions rows."""
    ts = F.timestamp_millis("decision_ts_ms")
    landed = F.timestamp_millis("landed_ms")
    return out.filter(F.col("kind") == "decision").select(
        "decision_id",
        "person_id",
        "rule_id",
        "rule_version",
        "campaign",
        "channel",
        "trigger",
        ts.alias("decision_ts"),
        F.to_date(ts).alias("decision_date"),
        "outcome",
        "reason",
        "inputs",
        "payload",
        landed.alias("landed_at"),
        F.timestamp_millis("decided_ms").alias("decided_at"),
        F.when(F.col("landed_ms").isNotNull(), F.col("decided_ms") - F.col("landed_ms"))
        .cast("long")
        .alias("latency_ms"),
        F.lit(source).alias("source"),
    )


def decision_inputs(lake: Lake, events: DataFrame) -> DataFrame:
    return with_facts(engine_rows(events), person_facts(lake), erased_ids(lake))


def start_decisions(
    lake: Lake, settings: Settings, *, available_now: bool = False, profiles=None
) -> StreamingQuery:
    """`profiles`: called with each micro-batch's profile rows (the Redis writer)."""
    a = settings.activation
    lake.ensure(DECISIONS.name)
    use_rocksdb(lake.spark)
    events = lake.spark.readStream.format("delta").load(lake.path(STREAM_EVENTS.name))
    decided = (
        decision_inputs(lake, events)
        .withWatermark("event_ts", f"{a.watermark_minutes} minutes")
        .groupBy("person_id")
        .transformWithStateInPandas(
            DecisionProcessor(a, settings.silver.session_timeout_minutes),
            OUTPUT,
            "Append",
            "EventTime",
        )
    )

    def write(batch: DataFrame, batch_id: int) -> None:
        t0 = time.monotonic()
        batch = batch.persist()
        try:
            rows = decision_frame(batch, "stream")
            result = lake.merge(DECISIONS.name, rows, ["decision_id"], update_existing=False)
            if profiles is not None:
                profiles(batch.filter(F.col("kind") == "profile"))
        finally:
            batch.unpersist()
        log.info(
            "stream decisions batch %d: %d decision(s) in %.1fs",
            batch_id,
            result.rows_written,
            time.monotonic() - t0,
        )

    return _start(decided, write, settings, "decisions", available_now)


def _start(df: DataFrame, write, settings: Settings, name: str, available_now: bool):
    a = settings.activation
    writer = (
        df.writeStream.queryName(f"activation_{name}")
        .foreachBatch(write)
        .option("checkpointLocation", f"{checkpoint_root(settings)}/{name}")
    )
    if available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=f"{a.trigger_seconds} seconds")
    log.info("starting the %s query (checkpoint %s/%s)", name, checkpoint_root(settings), name)
    return writer.start()


# ---------------------------------------------------------------------- replay


def replay(
    lake: Lake, settings: Settings, events: DataFrame, until_ms: int | None = None
) -> DataFrame:
    """Re-run the rules over `events` (silver.events or activation.stream_events rows of
    a time range) from empty state: the same engine, per person in event-time order, the
    timers fired up to `until_ms` (default: the last event time - the watermark, where
    the stream's watermark stands after the same input). -> activation.decisions rows."""
    a = settings.activation
    if "value" not in events.columns:
        events = events.withColumn("value", event_value())
    rows = decision_inputs(lake, events)
    if until_ms is None:
        last = rows.agg(F.max("ts_ms")).first()[0]
        until_ms = None if last is None else int(last) - a.watermark_minutes * 60_000
    engine = Engine(a, settings.silver.session_timeout_minutes)

    def per_person(frame: pd.DataFrame) -> pd.DataFrame:
        person = frame["person_id"].iloc[0]
        state = load_state(None)
        out = run_person(engine, state, person, frame)
        if until_ms is not None:
            out += decision_rows(engine.on_deadline(state, person, until_ms))
        return output_frame(person, out, None)

    decided = rows.groupBy("person_id").applyInPandas(per_person, OUTPUT)
    return decision_frame(decided, "replay")


def use_rocksdb(spark: SparkSession) -> None:
    """transformWithState keeps its state in RocksDB (the only store it supports)."""
    spark.conf.set(
        "spark.sql.streaming.stateStore.providerClass",
        "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider",
    )
