"""Real-time activation end to end on a small generated lake: the stream against the
batch pipeline, restarts, replay, rate limits on the decision log, webhook delivery
against a local receiver that fails, the profile sync, a real redis-server and the API."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from behavior_lake.activation import cache, delivery
from behavior_lake.activation.stream import replay, start_decisions, start_events
from behavior_lake.bronze.ingest import ingest
from behavior_lake.catalog import resolve
from behavior_lake.config import Settings
from behavior_lake.contracts.activation import (
    DEAD_LETTERS,
    DECISIONS,
    DELIVERIES,
    STREAM_EVENTS,
    SYNC_STATE,
)
from behavior_lake.contracts.ml import CHURN_SCORES
from behavior_lake.contracts.silver import EVENTS
from behavior_lake.contracts.taxonomy import Taxonomy, load_taxonomy
from behavior_lake.generator.generate import generate
from behavior_lake.generator.standins import standin_scores
from behavior_lake.lake import Lake, make_lake
from behavior_lake.silver.build import build_silver
from tests.conftest import CONF, lake_test_settings

SECRET = "test-webhook-signing-key"
API_KEY = "test-api-key"


@dataclass
class Act:
    settings: Settings
    lake: Lake
    taxonomy: Taxonomy
    landing: Path  # everything generated (the batch pipeline's input)
    stream_landing: Path  # what the stream has been given so far


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def act(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory, default_engine: str) -> Act:
    if default_engine != "delta-spark":
        pytest.skip("the activation stream runs on delta-spark (Structured Streaming)")
    tmp = tmp_path_factory.mktemp("activation")
    s = lake_test_settings(
        tmp / "lake",
        f"landing.root={tmp / 'landing'}",
        f"landing.truth_root={tmp / 'truth'}",
        "activation.quiet_hours.start=00:00",
        "activation.quiet_hours.end=06:00",
        f"activation.redis.url=redis://127.0.0.1:{_free_port()}/0",
        # Events later than the stream's watermark are dropped by its stateful step
        # while a replay from silver takes them: stream = replay holds for on-time data
        # (docs/activation.md). Every other fault of the generator stays on.
        "generator.faults.late=0",
    )
    s = replace(s, generator=replace(s.generator, users=40, days=8, partitions=2))
    generate(spark, s.generator, s.landing.root, s.landing.truth_root)
    lake = make_lake(spark, s.lake.root, "delta-spark", resolve(s))
    tax = load_taxonomy(CONF)
    ingest(lake, s, tax, "act-bronze")
    build_silver(lake, s, tax, "act-silver")
    standin_scores(lake)  # deterministic scores crossing 0.7 for some persons
    stream_landing = tmp / "stream_landing"
    stream_landing.mkdir()
    stream_settings = replace(s, landing=replace(s.landing, root=str(stream_landing)))
    return Act(stream_settings, lake, tax, Path(s.landing.root), stream_landing)


def _land(act: Act, days: list[Path]) -> None:
    for d in days:
        shutil.copytree(d, act.stream_landing / d.name, dirs_exist_ok=True)


def _run_stream(act: Act) -> None:
    q = start_events(act.lake, act.settings, act.taxonomy, available_now=True)
    q.awaitTermination()
    profiles = cache.stream_profiles(act.settings.activation.redis)
    q = start_decisions(act.lake, act.settings, available_now=True, profiles=profiles)
    q.awaitTermination()


def test_stream_equals_batch_across_a_restart(act: Act, redis_server) -> None:
    days = sorted(p for p in act.landing.iterdir() if p.is_dir())
    half = len(days) // 2
    _land(act, days[:half])
    _run_stream(act)  # first run, then the queries stop (a restart follows)
    first = act.lake.read(STREAM_EVENTS.name).count()
    assert 0 < first
    # a producer resends a file already seen (at-least-once): nothing is duplicated
    resent = act.stream_landing / days[0].name / "resent"
    shutil.copytree(days[0] / sorted(p.name for p in days[0].iterdir())[0], resent)
    _land(act, days[half:])
    _run_stream(act)  # restarted from the checkpoints
    stream = act.lake.read(STREAM_EVENTS.name)
    silver = act.lake.read(EVENTS)
    cols = ["message_id", "person_id", "event", "event_ts", "event_name"]
    assert stream.count() == stream.select("message_id").distinct().count()  # no duplicate
    assert stream.count() == silver.count() > first
    assert stream.select(cols).exceptAll(silver.select(cols)).count() == 0
    assert silver.select(cols).exceptAll(stream.select(cols)).count() == 0
    # the same stream run again over the same input adds nothing
    version = act.lake.version(STREAM_EVENTS.name)
    _run_stream(act)
    assert act.lake.read(STREAM_EVENTS.name).count() == stream.count()
    assert act.lake.version(STREAM_EVENTS.name) >= version


# ---------------------------------------------------------------------- kafka source


@pytest.fixture(scope="module")
def kafka_broker(act: Act, tmp_path_factory: pytest.TempPathFactory):
    """A real single-node KRaft broker from the locked Maven jars, on 127.0.0.1."""
    from behavior_lake import localkafka
    from behavior_lake.jars import cached_jars, missing_reason

    if not cached_jars(["kafka"]) or not cached_jars([localkafka.SET]):
        pytest.fail(f"Kafka jars: {missing_reason(['kafka', localkafka.SET])} (make jars)")
    broker = localkafka.start(tmp_path_factory.mktemp("kafka"), die_with_parent=True)
    yield broker
    localkafka.stop(broker)


def _produce(spark: SparkSession, files: list[Path], bootstrap: str, topic: str) -> int:
    """Landing lines to Kafka as a forwarder would: one record a line, keyed by the file's
    landing path. Lines over Kafka's default 1 MB record limit are left out (silver
    quarantines them as line_too_long anyway)."""
    lines = spark.read.text([str(f) for f in files]).select(
        F.substring_index(F.col("_metadata.file_path"), "/", -3).alias("key"), "value"
    )
    lines = lines.filter(F.octet_length("value") < 900_000).localCheckpoint()
    lines.write.format("kafka").option("kafka.bootstrap.servers", bootstrap).option(
        "topic", topic
    ).save()
    return lines.count()


@pytest.mark.e2e  # a Kafka broker and two stream runs: make test-e2e
def test_kafka_stream_equals_batch_across_a_restart(
    act: Act, kafka_broker, spark: SparkSession, tmp_path: Path
) -> None:
    from behavior_lake.contracts.silver import IDENTITY_MAP

    s = act.settings
    ks = replace(
        s,
        lake=replace(s.lake, root=str(tmp_path / "lake")),
        activation=replace(
            s.activation,
            source="kafka",
            kafka_bootstrap=kafka_broker.bootstrap,
            kafka_topic="landing-lines",
            max_offsets_per_trigger=1500,  # several micro-batches per run
        ),
    )
    klake = make_lake(spark, ks.lake.root, "delta-spark", resolve(ks))
    klake.overwrite(IDENTITY_MAP.name, act.lake.read(IDENTITY_MAP.name))
    files = sorted(p for p in act.landing.rglob("*.jsonl*") if p.is_file())
    half = len(files) // 2

    def run() -> int:
        q = start_events(klake, ks, act.taxonomy, available_now=True)
        q.awaitTermination()
        assert q.exception() is None
        return klake.read(STREAM_EVENTS.name).count()

    sent = _produce(spark, files[:half], kafka_broker.bootstrap, "landing-lines")
    first = run()
    assert 0 < first and sent > 0
    # a resent file (at-least-once producer) and the rest, after a restart
    _produce(spark, files[:1] + files[half:], kafka_broker.bootstrap, "landing-lines")
    total = run()
    stream, silver = klake.read(STREAM_EVENTS.name), act.lake.read(EVENTS)
    cols = ["message_id", "person_id", "event", "event_ts", "event_name"]
    assert total == stream.select("message_id").distinct().count() == silver.count() > first
    assert stream.select(cols).exceptAll(silver.select(cols)).count() == 0
    assert silver.select(cols).exceptAll(stream.select(cols)).count() == 0
    # landed = the Kafka record's timestamp, so the latency of decisions is measured
    assert stream.filter(F.col("landed_at").isNull()).count() == 0


def test_replay_from_silver_reproduces_the_logged_decisions(act: Act) -> None:
    logged = act.lake.read(DECISIONS.name)
    assert logged.count() > 0
    cols = ["decision_id", "person_id", "rule_id", "trigger", "decision_ts", "outcome",
            "reason", "inputs", "payload"]  # fmt: skip
    replayed = replay(act.lake, act.settings, act.lake.read(EVENTS))
    assert replayed.count() == logged.count()
    assert replayed.select(cols).exceptAll(logged.select(cols)).count() == 0
    assert logged.select(cols).exceptAll(replayed.select(cols)).count() == 0
    # every kind of rule decided something, fired and suppressed
    rules = {r["rule_id"] for r in logged.select("rule_id").distinct().collect()}
    assert {"cart_abandoned", "churn_risk_high"} <= rules
    reasons = {r["reason"] for r in logged.select("reason").distinct().collect()}
    assert None in reasons and "no_consent" in reasons
    # latency is measured for event-triggered decisions of the stream
    lat = logged.filter(F.col("latency_ms").isNotNull()).count()
    assert lat > 0


def test_real_time_mode_decides_the_event_rules_like_the_log(
    act: Act, kafka_broker, spark: SparkSession, tmp_path: Path
) -> None:
    """The instant path (trigger(realTime=...), Kafka to Kafka, stateless) decides the
    same triggers of the event rules as the micro-batch log, with the same decision ids
    and the same holdout persons."""
    from behavior_lake.activation.realtime import start_instant

    a = replace(
        act.settings.activation,
        kafka_bootstrap=kafka_broker.bootstrap,
        kafka_topic="rt-in",
        realtime_topic="rt-out",
        realtime_checkpoint_seconds=5,
    )
    rs = replace(act.settings, activation=a)
    files = sorted(p for p in act.landing.rglob("*.jsonl*") if p.is_file())
    _produce(spark, files[:1], kafka_broker.bootstrap, "rt-in")  # the topic exists
    query = start_instant(act.lake, rs, str(tmp_path / "ck"))
    try:
        _produce(spark, files, kafka_broker.bootstrap, "rt-in")
        opts = {"kafka.bootstrap.servers": kafka_broker.bootstrap, "subscribe": "rt-out"}
        seen, stable = -1, 0
        for _ in range(60):  # bounded wait: until the output stops growing
            time.sleep(2)
            assert query.isActive, query.exception()
            n = spark.read.format("kafka").options(**opts).load().count()
            stable = stable + 1 if n == seen and n > 0 else 0
            seen = n
            if stable >= 2:
                break
    finally:
        query.stop()
    out = spark.read.format("kafka").options(**opts).load()
    schema = (
        "decision_id string, person_id string, rule_id string, outcome string, "
        "reason string, landed_ms long"
    )
    got = out.select(F.from_json(F.col("value").cast("string"), schema).alias("d")).select("d.*")
    event_rules = [r.id for r in a.rules if r.kind == "event"]
    logged = act.lake.read(DECISIONS.name).filter(F.col("rule_id").isin(event_rules))
    ids = {r[0] for r in got.select("decision_id").distinct().collect()}
    log_ids = {r[0] for r in logged.select("decision_id").collect()}
    assert ids and ids == log_ids
    # the holdout is the engine's deterministic draw; a person the log held out is held
    # out here too unless this event itself carried no consent (the log remembers it)
    from behavior_lake.activation.engine import holdout_bucket

    rules = {r.id: r for r in a.rules}
    rows = got.select("decision_id", "person_id", "rule_id", "outcome", "reason").collect()
    for r in rows:
        rule = rules[r["rule_id"]]
        drawn = holdout_bucket(r["person_id"], rule.campaign) < rule.holdout_share
        assert (r["reason"] == "holdout") == (
            drawn and r["reason"] not in ("no_consent", "quiet_hours")
        )
    instant = {r["decision_id"]: r["reason"] for r in rows}
    for r in logged.filter(F.col("reason") == "holdout").select("decision_id").collect():
        assert instant[r[0]] in ("holdout", "no_consent")
    assert {r["outcome"] for r in rows} <= {"fired", "suppressed"}
    assert got.filter(F.col("landed_ms").isNull()).count() == 0


def test_rate_limits_and_holdouts_hold_in_the_decision_log(act: Act) -> None:
    a = act.settings.activation
    acted = act.lake.read(DECISIONS.name).filter(
        (F.col("outcome") == "fired") | (F.col("reason") == "holdout")
    )
    worst = acted.groupBy("person_id", "decision_date").count().agg(F.max("count")).first()[0]
    assert worst <= a.daily_cap_per_person
    for rule in a.rules:
        rows = acted.filter(F.col("rule_id") == rule.id).select(
            "person_id", F.unix_millis("decision_ts").alias("t")
        )
        gaps = rows.groupBy("person_id").agg(F.sort_array(F.collect_list("t")).alias("ts"))
        for r in gaps.collect():
            ts = r["ts"]
            assert all(
                b - a2 >= rule.cooldown_hours * 3_600_000 for a2, b in itertools.pairwise(ts)
            )
    # holdout decisions are exactly the persons below the share, among the eligible
    from behavior_lake.activation.engine import holdout_bucket

    by_rule = {r.id: r for r in a.rules}
    for r in acted.select("person_id", "rule_id", "reason").collect():
        rule = by_rule[r["rule_id"]]
        held = holdout_bucket(r["person_id"], rule.campaign) < rule.holdout_share
        assert (r["reason"] == "holdout") == held


# ---------------------------------------------------------------------- webhooks


class Receiver:
    """A local webhook receiver: checks signatures, fails some requests (every first
    attempt of a third of the ids, every attempt of a few), remembers what it accepted."""

    def __init__(self) -> None:
        self.accepted: dict[str, bytes] = {}
        self.attempts: dict[str, int] = {}
        self.bad_signatures = 0
        self.fail_always = True
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                idem = self.headers["Idempotency-Key"]
                expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
                if self.headers[delivery.SIGNATURE] != expected:
                    receiver.bad_signatures += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                n = receiver.attempts[idem] = receiver.attempts.get(idem, 0) + 1
                bucket = int(hashlib.sha256(idem.encode()).hexdigest()[:4], 16)
                if (receiver.fail_always and bucket % 11 == 0) or (bucket % 3 == 0 and n == 1):
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.accepted[idem] = body
                self.send_response(200)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch):
    r = Receiver()
    monkeypatch.setenv("BEHAVIOR_LAKE_WEBHOOK_SECRET", SECRET)
    yield r
    r.close()


def _hook(act: Act, url: str):
    return replace(act.settings.activation.webhook, url=url, backoff_seconds=0.01,
                   timeout_seconds=2, batch_size=7)  # fmt: skip


def test_webhook_delivery_retries_dead_letters_and_is_idempotent(act: Act, receiver) -> None:
    w = _hook(act, receiver.url)
    fired = act.lake.read(DECISIONS.name).filter(F.col("outcome") == "fired")
    n = fired.count()
    assert n > 5
    got = delivery.deliver(act.lake, w)
    assert got["delivered"] + got["dead_letter"] == n
    assert got["dead_letter"] > 0 and got["delivered"] > 0
    assert receiver.bad_signatures == 0
    assert set(receiver.accepted) == {
        r[0]
        for r in act.lake.read(DELIVERIES.name)
        .filter(F.col("status") == "delivered")
        .select("decision_id")
        .collect()
    }
    # retried ones took more than one attempt; dead letters keep their body
    retried = act.lake.read(DELIVERIES.name).filter(
        (F.col("status") == "delivered") & (F.col("attempts") > 1)
    )
    assert retried.count() > 0
    dead = act.lake.read(DEAD_LETTERS.name)
    assert dead.count() == got["dead_letter"]
    assert dead.filter(F.col("attempts") == w.max_attempts).count() == got["dead_letter"]
    body = json.loads(next(iter(receiver.accepted.values())))
    assert {"decision_id", "person_id", "rule_id", "payload"} <= set(body)
    # a second run sends nothing again
    before = dict(receiver.attempts)
    assert delivery.deliver(act.lake, w) == {"delivered": 0, "dead_letter": 0}
    assert receiver.attempts == before
    # a wrong key is refused by the receiver: the signature is really checked
    req = urllib.request.Request(receiver.url, data=b"{}", method="POST",
                                 headers={"Idempotency-Key": "x", delivery.SIGNATURE: "sha256=0"})  # fmt: skip
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(req, timeout=5)
    assert receiver.bad_signatures == 1


def test_profile_sync_sends_only_changed_persons(act: Act, receiver) -> None:
    receiver.fail_always = False  # transient failures only: every batch gets through
    w = _hook(act, receiver.url)
    persons = act.lake.read(CHURN_SCORES.name).count()
    assert delivery.sync_profiles(act.lake, w) == {"synced": persons, "failed": 0}
    assert act.lake.read(SYNC_STATE.name).count() == persons
    assert max(receiver.attempts.values()) > 1  # some batches were retried
    assert delivery.sync_profiles(act.lake, w) == {"synced": 0, "failed": 0}
    # one person's score changes: only that person is sent next time
    one = act.lake.read(SYNC_STATE.name).select("person_id").first()[0]
    scores = act.lake.read(CHURN_SCORES.name).withColumn(
        "churn_probability",
        F.when(F.col("person_id") == one, F.lit(0.99)).otherwise(F.col("churn_probability")),
    )
    act.lake.overwrite(CHURN_SCORES.name, scores.localCheckpoint())
    seen = set(receiver.accepted)
    assert delivery.sync_profiles(act.lake, w) == {"synced": 1, "failed": 0}
    (new,) = [receiver.accepted[k] for k in set(receiver.accepted) - seen]
    assert [p["person_id"] for p in json.loads(new)["profiles"]] == [one]


# ---------------------------------------------------------------------- redis and the API


@pytest.fixture(scope="module")
def redis_server(act: Act):
    port = int(act.settings.activation.redis.url.rsplit(":", 1)[1].split("/")[0])
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.fail(
            "redis-server is not installed: run make system-deps (apt-get install redis-server)"
        )
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = cache.client(act.settings.activation.redis)
    for _ in range(100):
        try:
            client.ping()
            break
        except Exception:
            time.sleep(0.05)
    yield proc, port, exe
    if proc.poll() is None:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def api(act: Act, redis_server):
    import uvicorn

    from behavior_lake.activation.api import build_app

    settings = replace(
        act.settings,
        activation=replace(
            act.settings.activation,
            api=replace(
                act.settings.activation.api,
                key_sha256=[hashlib.sha256(API_KEY.encode()).hexdigest()],
                rate_per_second=50,
            ),
            redis=replace(act.settings.activation.redis, timeout_seconds=0.2),
        ),
    )
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(build_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", settings
    server.should_exit = True
    thread.join(10)


def _get(url: str, key: str | None = API_KEY, body: dict | None = None) -> tuple[int, dict]:
    headers = {"X-API-Key": key} if key else {}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    req = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_the_stream_wrote_profile_fields(act: Act, redis_server) -> None:
    c = cache.ProfileCache(act.settings.activation.redis)
    last = (
        act.lake.read(STREAM_EVENTS.name)
        .groupBy("person_id")
        .agg(F.max(F.unix_millis("event_ts")).alias("t"))
        .orderBy("person_id")
        .limit(5)
        .collect()
    )
    for row in last:
        got = c.get(row["person_id"])
        assert got is not None and int(got["last_event_ms"]) == row["t"]
        assert got["cart_open"] in ("true", "false") and "consents" in got


def test_cache_is_built_from_gold_and_rebuilt_when_empty(act: Act, redis_server) -> None:
    r = act.settings.activation.redis
    c = cache.ProfileCache(r)
    c.r.flushdb()
    assert c.is_empty()
    built = cache.rebuild_if_empty(act.lake, r)
    persons = act.lake.read(CHURN_SCORES.name).count()
    assert built == {"written": persons, "failed": 0}
    assert not c.is_empty() and cache.rebuild_if_empty(act.lake, r) is None
    one = act.lake.read(CHURN_SCORES.name).first()
    got = c.get(one["person_id"])
    assert float(got["churn_probability"]) == pytest.approx(one["churn_probability"])
    assert 0 < c.r.ttl(c.key(one["person_id"])) <= r.ttl_hours * 3600


def test_scoring_refreshes_the_cache_when_redis_is_reachable(act: Act, redis_server) -> None:
    r = act.settings.activation.redis
    persons = act.lake.read(CHURN_SCORES.name).count()
    assert cache.refresh_after_scoring(act.lake, r) == persons
    down = replace(r, url=f"redis://127.0.0.1:{_free_port()}/0")
    assert cache.refresh_after_scoring(act.lake, down) is None  # batch-only: skipped


def test_erasure_deletes_the_subject_s_cached_profile(act: Act, redis_server) -> None:
    c = cache.ProfileCache(act.settings.activation.redis)
    c.put_many([("p-erased", {"segment_id": 1}), ("p-kept", {"segment_id": 2})])
    assert c.get("p-erased") and c.get("p-kept")
    # ops.erasure_suppression holds sha256 of the pseudonym
    assert c.forget({hashlib.sha256(b"p-erased").hexdigest(), "0" * 64}) == 1
    assert c.get("p-erased") is None and c.get("p-kept") == {"segment_id": "2"}


def test_api_answers_from_redis_then_snapshot_when_redis_dies(act: Act, redis_server, api) -> None:
    from behavior_lake.activation.api import person_of_user
    from behavior_lake.privacy.pseudonym import user_person_id

    base, settings = api
    proc = redis_server[0]
    cache.cache_profiles(act.lake, settings.activation.redis)
    one = act.lake.read(CHURN_SCORES.name).first()
    person = one["person_id"]
    assert _get(f"{base}/v1/profiles/{person}", key=None)[0] == 401
    assert _get(f"{base}/v1/profiles/{person}", key="wrong")[0] == 401
    status, body = _get(f"{base}/v1/profiles/{person}")
    assert status == 200 and body["source"] == "redis"
    assert body["profile"]["churn_probability"] == pytest.approx(one["churn_probability"])
    status, body = _get(f"{base}/v1/decide", body={"person_id": person})
    assert status == 200 and body["source"] == "redis" and "nudge" in body
    # raw user ids are pseudonymized server-side exactly as silver does
    spark = act.lake.spark
    spark_id = (
        spark.range(1)
        .select(user_person_id(F.lit("user-42"), settings.privacy.pseudonym_key))
        .first()[0]
    )
    assert person_of_user("user-42", settings.privacy.pseudonym_key) == spark_id
    seg = _get(f"{base}/v1/segments/1/members?limit=5")[1]
    assert seg["source"] == "snapshot" and len(seg["members"]) <= 5
    openapi = _get(f"{base}/openapi.json")[1]
    assert "/v1/decide" in openapi["paths"]
    # Redis dies mid-run: the same question is answered from the gold snapshot
    proc.kill()
    proc.wait(10)
    status, body = _get(f"{base}/v1/profiles/{person}")
    assert status == 200 and body["source"] == "snapshot" and "redis unavailable" in body["note"]
    assert body["profile"]["churn_probability"] == pytest.approx(one["churn_probability"])
    status, body = _get(f"{base}/v1/decide", body={"person_id": person})
    assert status == 200 and body["source"] == "snapshot"
    # an unknown person: no profile anywhere, a safe answer
    status, body = _get(f"{base}/v1/decide", body={"user_id": "nobody-at-all"})
    assert status == 200 and body["nudge"]["act"] is False
    # every answer was logged
    log_dir = Path(settings.lake.root) / settings.activation.api.answer_log
    lines = [json.loads(x) for f in log_dir.glob("*.jsonl") for x in f.read_text().splitlines()]
    assert {x["source"] for x in lines if x["kind"] == "profile"} >= {"redis", "snapshot"}
    # per-key rate limit: a burst over the budget gets 429s
    codes = [_get(f"{base}/v1/profiles/{person}")[0] for _ in range(80)]
    assert 429 in codes and 200 in codes


def test_serve_runs_the_configured_worker_processes(act: Act, tmp_path: Path) -> None:
    """`behavior-lake serve` as users run it: activation.api.workers processes on one port,
    each answering from the gold snapshot (no Redis here) and logging its answers."""
    import os
    import signal
    import sys

    port = _free_port()
    key = hashlib.sha256(API_KEY.encode()).hexdigest()
    conf = [f"lake.root={act.settings.lake.root}", f"activation.api.key_sha256=[{key}]",
            f"activation.redis.url=redis://127.0.0.1:{_free_port()}/0",
            "activation.api.workers=2", f"activation.api.answer_log={tmp_path.name}"]  # fmt: skip
    cmd = [str(Path(sys.executable).parent / "behavior-lake"), "serve", "--port", str(port)]
    for c in conf:
        cmd += ["--conf", c]
    with (tmp_path / "serve.log").open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(120):  # bounded: up to 60 s for the workers to load the snapshot
            try:
                if _get(f"{base}/v1/health", key=None)[0] == 200:
                    break
            except OSError:
                time.sleep(0.5)
        person = act.lake.read(CHURN_SCORES.name).first()["person_id"]
        answers = [_get(f"{base}/v1/profiles/{person}") for _ in range(20)]
        assert all(s == 200 and b["source"] == "snapshot" for s, b in answers)
        children = [
            p for p in os.listdir("/proc") if p.isdigit() and _ppid(p) == proc.pid
        ]  # the uvicorn supervisor's worker processes
        assert len(children) >= 2
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    log_dir = Path(act.settings.lake.root) / tmp_path.name
    logged = [x for f in log_dir.glob("*.jsonl") for x in f.read_text().splitlines()]
    assert len(logged) == 20


def _ppid(pid: str) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1
