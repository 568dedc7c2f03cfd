"""Activation latency and load: the micro-batch stream, real-time mode and the decision API.

    python bench/activation_bench.py [--users 300] [--days 6] [--seconds 60]
                                     [--rates 200,1000] [--api-seconds 10]
    (make bench-activation)

Everything on 127.0.0.1 in one temporary folder, every loop bounded:

1. Micro-batch path: generated landing files are copied into an empty landing folder one
   every `--interval` seconds while the two activation queries run (1 s trigger);
   latency = the landing file's modification time -> the decision row's data file
   written (Delta `_metadata.file_modification_time`), for event-triggered decisions.
2. Real-time mode: a Kafka broker (locked jars), the instant event rules
   (`activation.realtime`) with `trigger(realTime=...)` from one topic to another; lines
   are produced at a fixed rate; latency = input record timestamp -> output record
   timestamp. Null with the reason when the query cannot start or emits nothing.
3. Decision API: redis-server and `behavior-lake serve` in their own processes; GET
   /v1/profiles/<id> at fixed rates, open loop (latency from each request's scheduled
   time, so a server that falls behind is charged for it), from Redis and on fallback
   (Redis stopped: every request finds it down and answers from the gold snapshot).

Writes bench/results/activation-<UTC timestamp>.json (`microbatch.p95_ms`,
`realtime.p95_ms`, `api.<rate>.<path>.p99_ms`, ...).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import itertools
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from results_io import write_result

API_KEY = "bench-api-key"
GOALS = {"microbatch_p95_ms": 3000, "realtime_p95_ms": 1000, "api_redis_1000_p99_ms": 10}


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[min(len(s) - 1, int(q * len(s)))], 1)


def summary(values: list[float]) -> dict:
    return {"n": len(values), "p50_ms": pct(values, 0.5), "p95_ms": pct(values, 0.95),
            "p99_ms": pct(values, 0.99), "max_ms": pct(values, 1.0)}  # fmt: skip


def free_port() -> int:
    from behavior_lake.standalone import free_port as fp

    return fp()


# ------------------------------------------------------------------ setup: a small lake


def build(tmp: Path, users: int, days: int):
    from behavior_lake.bronze.ingest import ingest
    from behavior_lake.catalog import resolve
    from behavior_lake.config import load_settings
    from behavior_lake.contracts.taxonomy import load_taxonomy
    from behavior_lake.generator.generate import generate
    from behavior_lake.generator.standins import standin_scores
    from behavior_lake.lake import make_lake
    from behavior_lake.silver.build import build_silver
    from behavior_lake.spark import build_session

    s = load_settings(
        "local",
        [
            f"lake.root={tmp / 'lake'}",
            f"landing.root={tmp / 'landing'}",
            f"landing.truth_root={tmp / 'truth'}",
            f"generator.users={users}",
            f"generator.days={days}",
            "generator.partitions=2",
            "generator.faults.late=0",
            "lake.engine=delta-spark",
            "activation.source=kafka",  # the session gets the Kafka source's jars
            "activation.quiet_hours.start=00:00",
            "activation.quiet_hours.end=00:00",
            f"activation.redis.url=redis://127.0.0.1:{free_port()}/0",
        ],
    )
    spark = build_session(s, {"spark.ui.enabled": "false"})
    spark.sparkContext.setLogLevel("ERROR")
    t0 = time.monotonic()
    generate(spark, s.generator, s.landing.root, s.landing.truth_root)
    lake = make_lake(spark, s.lake.root, "delta-spark", resolve(s))
    tax = load_taxonomy(Path(s.conf_dir))
    ingest(lake, s, tax, "bench-bronze")
    build_silver(lake, s, tax, "bench-silver")
    persons = standin_scores(lake)
    print(f">> lake: {persons} persons in {time.monotonic() - t0:.0f} s", flush=True)
    return s, spark, lake, tax


# ------------------------------------------------------------------ 1. micro-batch path


def microbatch(s, lake, tax, tmp: Path, seconds: float, interval: float) -> dict:
    from pyspark.sql import functions as F

    from behavior_lake.activation.stream import start_decisions, start_events
    from behavior_lake.contracts.activation import DECISIONS

    landing = tmp / "stream_landing"
    landing.mkdir()
    a = replace(s.activation, source="files", trigger_seconds=1.0, checkpoint_dir=str(tmp / "ck"))
    ss = replace(s, landing=replace(s.landing, root=str(landing)), activation=a)
    files = sorted(p for p in Path(s.landing.root).rglob("*.jsonl*") if p.is_file())
    events = start_events(lake, ss, tax)
    decisions = start_decisions(lake, ss)
    t_end = time.monotonic() + seconds
    fed = 0
    try:
        for f in files:  # bounded: every file once, or until the time is up
            if time.monotonic() > t_end:
                break
            target = landing / f.relative_to(s.landing.root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, target)  # mtime = now: the landing time
            fed += 1
            time.sleep(interval)
        time.sleep(max(10.0, 4 * interval))  # let the last files through
    finally:
        progress = {
            q.name: [p.durationMs.get("triggerExecution", 0) for p in q.recentProgress]
            for q in (events, decisions)
        }
        for q in (events, decisions):
            q.stop()
    rows = (
        lake.read(DECISIONS.name)
        .filter(F.col("latency_ms").isNotNull() & (F.col("source") == "stream"))
        .select(
            "latency_ms",
            (
                F.unix_millis(F.col("_metadata.file_modification_time"))
                - F.unix_millis("landed_at")
            ).alias("written_ms"),
        )
        .collect()
    )
    written = [float(r["written_ms"]) for r in rows]
    decided = [float(r["latency_ms"]) for r in rows]
    out = {"files_fed": fed, "of_files": len(files), "interval_s": interval, **summary(written)}
    out["decided"] = summary(decided)
    out["batch_ms"] = {name: summary([float(v) for v in d if v]) for name, d in progress.items()}
    out["measure"] = "landing file mtime -> decision row's Delta data file written"
    return out


# ------------------------------------------------------------------ 2. real-time mode


def _first_line(query) -> str:
    exc = query.exception()
    return str(exc).splitlines()[0][:400] if exc else "no exception"


def realtime(s, lake, tmp: Path, seconds: float, rate: int) -> dict:
    from pyspark.sql import functions as F

    from behavior_lake import localkafka
    from behavior_lake.activation.realtime import start_instant
    from behavior_lake.config import ActivationRule

    spark = lake.spark
    try:
        broker = localkafka.start(tmp / "kafka", die_with_parent=True)
    except Exception as exc:
        return {"p95_ms": None, "reason": f"Kafka broker did not start: {exc}"}
    # a frequent event rule besides the configured ones, so that every second has samples
    frequent = ActivationRule(
        id="bench_product_added", kind="event", event="Product Added",
        campaign="bench", channel="push", cooldown_hours=0, holdout_share=0.1,
    )  # fmt: skip
    a = replace(
        s.activation,
        rules=[*s.activation.rules, frequent],
        kafka_bootstrap=broker.bootstrap,
        kafka_topic="bench-in",
        realtime_topic="bench-out",
        realtime_checkpoint_seconds=30,
        kafka_starting_offsets="latest",
    )
    rs = replace(s, activation=a)
    opts = {"kafka.bootstrap.servers": broker.bootstrap}
    lines = (
        spark.read.option("recursiveFileLookup", "true")
        .option("pathGlobFilter", "*.jsonl*")
        .text(s.landing.root)
        .select("value")
        .localCheckpoint()
    )
    pool = lines.limit(20000).collect()
    query = None
    try:
        localkafka.ensure_topics(spark, broker.bootstrap, ["bench-in", "bench-out"])
        query = start_instant(lake, rs, str(tmp / "ck-instant"))
        time.sleep(8)  # the long-running task is scheduled
        if not query.isActive:
            return {"p95_ms": None, "reason": f"query stopped: {_first_line(query)}"}
        sent, t_end, step = 0, time.monotonic() + seconds, 0.5
        while time.monotonic() < t_end:  # bounded by time
            chunk = pool[sent % len(pool) :][: max(1, int(rate * step))]
            spark.createDataFrame(chunk, "value string").write.format("kafka").options(
                **opts, topic="bench-in"
            ).save()
            sent += len(chunk)
            time.sleep(step)
        time.sleep(5)
        if not query.isActive:
            return {"p95_ms": None, "reason": f"query stopped: {_first_line(query)}"}
        query.stop()
        query = None
        out = (
            spark.read.format("kafka")
            .options(**opts, subscribe="bench-out", startingOffsets="earliest")
            .load()
            .select(
                (
                    F.unix_millis("timestamp")
                    - F.get_json_object(F.col("value").cast("string"), "$.landed_ms").cast("long")
                ).alias("ms")
            )
            .collect()
        )
    except Exception as exc:  # e.g. STREAMING_REAL_TIME_MODE.* from the planner
        return {"p95_ms": None, "reason": f"{type(exc).__name__}: {str(exc).splitlines()[0][:400]}"}
    finally:
        if query is not None:
            query.stop()
        localkafka.stop(broker)
    lat = [float(r["ms"]) for r in out]
    res = {"lines_sent": sent, "rate_per_s": rate, "decisions": len(lat), **summary(lat)}
    if not lat:
        res["reason"] = "the real-time query emitted no decision"
    res["measure"] = "input Kafka record timestamp -> output record timestamp"
    return res


# ------------------------------------------------------------------ 3. decision API


def _wait_http(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/v1/health")
            if c.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"the API on port {port} did not answer within {timeout} s")


def _serve(s, redis_url: str, port: int, log: Path) -> subprocess.Popen:
    conf = [
        f"lake.root={s.lake.root}",
        f"activation.redis.url={redis_url}",
        f"activation.api.key_sha256=[{hashlib.sha256(API_KEY.encode()).hexdigest()}]",
        "activation.api.rate_per_second=1000000",
        "activation.redis.timeout_seconds=0.05",
    ]
    cmd = [str(Path(sys.executable).parent / "behavior-lake"), "serve", "--port", str(port)]
    for c in conf:
        cmd += ["--conf", c]
    with log.open("ab") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
    _wait_http(port)
    return proc


def load(port: int, ids: list[str], rate: int, seconds: float, threads: int = 8) -> dict:
    """Open loop: request i is due at start + i / rate; latency from the due time."""
    total = int(rate * seconds)
    counter = itertools.count()
    lat: list[float] = []
    sources: dict[str, int] = {}
    errors = [0]
    lock = threading.Lock()
    start = time.perf_counter() + 0.5

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"X-API-Key": API_KEY}
        rnd = random.Random(threading.get_ident())
        while (i := next(counter)) < total:
            due = start + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            try:
                conn.request("GET", f"/v1/profiles/{rnd.choice(ids)}", headers=headers)
                resp = conn.getresponse()
                body = json.loads(resp.read())
                ms = (time.perf_counter() - due) * 1000
                with lock:
                    lat.append(ms)
                    sources[body.get("source", "?")] = sources.get(body.get("source", "?"), 0) + 1
            except (OSError, http.client.HTTPException, ValueError):
                errors[0] += 1
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(seconds * 6 + 30)  # bounded
    elapsed = time.perf_counter() - start
    return {"requests": total, "achieved_per_s": round(len(lat) / elapsed, 1),
            "errors": errors[0], "sources": sources, **summary(lat)}  # fmt: skip


def api(s, lake, tmp: Path, rates: list[int], seconds: float) -> dict:
    from behavior_lake.activation.cache import cache_profiles
    from behavior_lake.contracts.ml import CHURN_SCORES

    exe = shutil.which("redis-server")
    if exe is None:
        return {"reason": "redis-server is not installed (make system-deps)"}
    url = s.activation.redis.url
    rport = int(url.rsplit(":", 1)[1].split("/")[0])
    redis = subprocess.Popen(
        [exe, "--port", str(rport), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    ids = [r[0] for r in lake.read(CHURN_SCORES.name).select("person_id").collect()]
    written = cache_profiles(lake, s.activation.redis)
    print(f">> redis: {written}", flush=True)
    lake.spark.stop()  # the last phase: the load runs without a JVM beside it
    out: dict = {"profiles": len(ids), "endpoint": "GET /v1/profiles/{person_id}"}
    procs = []
    try:
        port = free_port()
        procs.append(_serve(s, url, port, tmp / "api.log"))
        for rate in rates:
            out.setdefault(str(rate), {})["redis"] = load(port, ids, rate, seconds)
            print(f">> api {rate}/s redis: {out[str(rate)]['redis']}", flush=True)
        redis.terminate()
        redis.wait(10)
        for rate in rates:
            out[str(rate)]["fallback"] = load(port, ids, rate, seconds)
            print(f">> api {rate}/s fallback: {out[str(rate)]['fallback']}", flush=True)
    finally:
        for p in procs:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait(20)
        if redis.poll() is None:
            redis.terminate()
    for rate in rates:
        out[str(rate)]["p99_ms"] = out[str(rate)]["redis"]["p99_ms"]
    out["fallback_note"] = "redis-server stopped: each request finds it down, then the snapshot"
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=300)
    ap.add_argument("--days", type=int, default=6)
    ap.add_argument("--seconds", type=float, default=60, help="micro-batch and real-time runs")
    ap.add_argument("--interval", type=float, default=2.0, help="seconds between landed files")
    ap.add_argument("--realtime-rate", type=int, default=200, help="lines per second")
    ap.add_argument("--rates", default="200,1000", help="API request rates per second")
    ap.add_argument("--api-seconds", type=float, default=10)
    ap.add_argument("--only", choices=["microbatch", "realtime", "api"], action="append")
    args = ap.parse_args()
    only = set(args.only or ["microbatch", "realtime", "api"])
    t0 = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="activation-bench-"))
    out: dict = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": vars(args),
        "goals": GOALS,
    }
    try:
        s, spark, lake, tax = build(tmp, args.users, args.days)
        if "microbatch" in only:
            out["microbatch"] = microbatch(s, lake, tax, tmp, args.seconds, args.interval)
            print(f">> microbatch: {out['microbatch']}", flush=True)
        if "realtime" in only:
            out["realtime"] = realtime(s, lake, tmp, args.seconds, args.realtime_rate)
            print(f">> realtime: {out['realtime']}", flush=True)
        if "api" in only:
            rates = [int(r) for r in args.rates.split(",")]
            out["api"] = api(s, lake, tmp, rates, args.api_seconds)
        spark.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out["seconds"] = round(time.monotonic() - t0, 1)
    write_result("activation", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
