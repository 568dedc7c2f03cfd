"""Run the activation stream: landed events -> decisions, exactly once, until stopped.

    python jobs/activation_stream.py [--available-now] [--replay START END] [--instant]
                                     [--env local]

Two Structured Streaming queries (docs/activation.md): the landing folder through the
bronze and silver rules into activation.stream_events, then per-person state and timers
(transformWithStateInPandas) applying conf/base/activation.yml into activation.decisions,
with profile fields written to Redis. Checkpoints under activation.checkpoint_dir: a
restart continues where it stopped. --available-now processes what has landed and stops
(scheduled catch-up, tests); --replay re-runs the rules over silver.events of a date
range and prints how many decisions match the logged ones. --instant runs the event rules
alone in Spark's real-time mode, Kafka (activation.kafka_topic) to Kafka
(activation.realtime_topic), stateless: no cooldown or cap (activation/realtime.py).
"""

from __future__ import annotations

import argparse
from datetime import date

from behavior_lake.activation.cache import stream_profiles
from behavior_lake.activation.stream import replay, start_decisions, start_events
from behavior_lake.contracts.activation import DECISIONS, STREAM_EVENTS
from behavior_lake.contracts.governance import SUPPRESSION
from behavior_lake.contracts.ml import CHURN_SCORES, USER_SEGMENTS
from behavior_lake.contracts.silver import EVENTS as SILVER_EVENTS
from behavior_lake.contracts.silver import IDENTITY_MAP
from behavior_lake.contracts.taxonomy import load_taxonomy
from behavior_lake.lake.where import Where
from behavior_lake.runtime import JobContext, JobDef, out

JOB = "activation_stream"


def run(ctx: JobContext, args) -> None:
    if args.replay:
        _replay(ctx, date.fromisoformat(args.replay[0]), date.fromisoformat(args.replay[1]))
        return
    if args.instant:
        _instant(ctx)
        return
    taxonomy = load_taxonomy(ctx.settings.conf_dir)
    events = start_events(ctx.lake, ctx.settings, taxonomy, available_now=args.available_now)
    if args.available_now:
        events.awaitTermination()
    profiles = None if args.no_redis else stream_profiles(ctx.settings.activation.redis)
    decisions = start_decisions(
        ctx.lake, ctx.settings, available_now=args.available_now, profiles=profiles
    )
    print(f"{JOB}: queries running (checkpoints under activation.checkpoint_dir); Ctrl-C stops")
    try:
        decisions.awaitTermination()
        if not args.available_now:
            events.awaitTermination()
    except KeyboardInterrupt:
        for q in (events, decisions):
            q.stop()
    ctx.count(decisions=ctx.lake.read(DECISIONS.name).count())


def _instant(ctx: JobContext) -> None:
    from behavior_lake.activation.realtime import start_instant
    from behavior_lake.activation.stream import checkpoint_root

    a = ctx.settings.activation
    if a.source != "kafka":
        raise SystemExit(
            f"{JOB} --instant: real-time mode reads Kafka; set activation.source=kafka"
        )
    query = start_instant(ctx.lake, ctx.settings, f"{checkpoint_root(ctx.settings)}/instant")
    print(f"{JOB}: real-time mode {a.kafka_topic} -> {a.realtime_topic}; Ctrl-C stops")
    try:
        query.awaitTermination()
    except KeyboardInterrupt:
        query.stop()


def _replay(ctx: JobContext, start: date, end: date) -> None:
    where = Where.between("event_date", start, end)
    events = ctx.lake.read(SILVER_EVENTS).filter(where.column())
    replayed = replay(ctx.lake, ctx.settings, events)
    logged = ctx.lake.read(DECISIONS.name).filter(
        Where.between("decision_date", start, end).column()
    )
    cols = ["decision_id", "outcome", "reason"]
    same = replayed.select(cols).intersect(logged.select(cols)).count()
    total = replayed.count()
    print(f"{JOB}: replay {start}..{end}: {total} decision(s), {same} equal to the logged ones")
    ctx.count(replayed=total, matching=same)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--available-now", action="store_true",
                        help="process what has landed, then stop")  # fmt: skip
    parser.add_argument("--replay", nargs=2, metavar=("START", "END"),
                        help="re-run the rules over silver.events of these dates (YYYY-MM-DD)")  # fmt: skip
    parser.add_argument("--instant", action="store_true",
                        help="event rules only, in real-time mode, Kafka to Kafka")  # fmt: skip
    parser.add_argument("--no-redis", action="store_true",
                        help="do not write profile fields to Redis")  # fmt: skip


JOB_DEF = JobDef(
    name=JOB,
    description=__doc__.strip().splitlines()[0],
    inputs=(
        "landing",
        IDENTITY_MAP.name,
        SUPPRESSION.name,
        CHURN_SCORES.name,
        USER_SEGMENTS.name,
        SILVER_EVENTS,
    ),
    outputs=(out(STREAM_EVENTS.name, "merge"), out(DECISIONS.name, "merge")),
    body=run,
    arguments=_arguments,
)

cli = JOB_DEF.cli
