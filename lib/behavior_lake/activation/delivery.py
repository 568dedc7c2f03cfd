"""Webhook delivery of fired decisions, and the daily profile sync, to a marketing
automation / CRM endpoint (activation.webhook).

Every request is signed: `X-Behavior-Lake-Signature: sha256=<hex HMAC-SHA256 of the
body>` with the key in the environment variable activation.webhook.secret_env, and
carries an `Idempotency-Key` (the decision id; for the sync, a hash of the batch), so a
receiver can drop a request it has already seen (a retried task resends). Failures
(connection errors, timeouts, 429 and 5xx) are retried with exponential backoff up to
max_attempts; then the decision goes to `activation.dead_letters` with its body. Other 4xx
answers are not retried. The HTTP calls run on the executors (mapInPandas).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from behavior_lake.activation.cache import gold_profiles
from behavior_lake.config import ConfigError, WebhookSettings
from behavior_lake.contracts.activation import DEAD_LETTERS, DECISIONS, DELIVERIES, SYNC_STATE
from behavior_lake.lake.base import Lake

log = logging.getLogger(__name__)

SIGNATURE = "X-Behavior-Lake-Signature"
RESULT = (
    "decision_id string, person_id string, rule_id string, status string, attempts int, "
    "http_status int, error string, body string"
)


def signing_key(w: WebhookSettings) -> bytes:
    key = os.environ.get(w.secret_env, "")
    if not key:
        raise ConfigError(
            f"activation.webhook.secret_env: environment variable {w.secret_env} is not set "
            "(the key webhook bodies are signed with)"
        )
    return key.encode()


def sign(body: bytes, key: bytes) -> str:
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()


@dataclass
class Outcome:
    ok: bool
    attempts: int
    http_status: int | None
    error: str | None


def post(url: str, body: bytes, key: bytes, idempotency_key: str, w: WebhookSettings) -> Outcome:
    """POST with retries and exponential backoff; never raises."""
    status, error = None, None
    for attempt in range(1, w.max_attempts + 1):
        req = urllib.request.Request(
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": idempotency_key,
                SIGNATURE: sign(body, key),
                "User-Agent": "behavior-lake",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=w.timeout_seconds) as resp:
                return Outcome(True, attempt, resp.status, None)
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code}"
            if exc.code < 500 and exc.code != 429:
                return Outcome(False, attempt, status, error)  # the request itself is wrong
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            status, error = None, f"{type(exc).__name__}: {exc}"[:300]
        if attempt < w.max_attempts:
            time.sleep(w.backoff_seconds * (2 ** (attempt - 1)))
    return Outcome(False, w.max_attempts, status, error)


def pending_decisions(lake: Lake) -> DataFrame:
    """Fired decisions not yet delivered nor dead-lettered."""
    fired = lake.read(DECISIONS.name).filter(F.col("outcome") == "fired")
    if lake.exists(DELIVERIES.name):
        fired = fired.join(lake.read(DELIVERIES.name).select("decision_id"), "decision_id",
                           "left_anti")  # fmt: skip
    return fired


def decision_body() -> F.Column:
    return F.to_json(
        F.struct(
            "decision_id",
            "person_id",
            "rule_id",
            "rule_version",
            "campaign",
            "channel",
            F.date_format("decision_ts", "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'").alias("decision_ts"),
            F.parse_json("payload").alias("payload"),
        )
    )


def deliver(lake: Lake, w: WebhookSettings) -> dict[str, int]:
    """Send every pending fired decision; record deliveries and dead letters."""
    if not w.url:
        raise ConfigError("activation.webhook.url: not set (where decisions are delivered)")
    key = signing_key(w)
    lake.ensure(DELIVERIES.name)
    lake.ensure(DEAD_LETTERS.name)
    todo = pending_decisions(lake).select(
        "decision_id", "person_id", "rule_id", decision_body().alias("body")
    )

    def send(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            rows = []
            for r in pdf.itertuples(index=False):
                got = post(w.url, r.body.encode(), key, r.decision_id, w)
                rows.append((r.decision_id, r.person_id, r.rule_id,
                             "delivered" if got.ok else "dead_letter", got.attempts,
                             got.http_status, got.error, r.body))  # fmt: skip
            yield pd.DataFrame(rows, columns=[c.split()[0] for c in RESULT.split(", ")])

    results = todo.mapInPandas(send, RESULT).withColumn("sent_at", F.current_timestamp())
    results = results.localCheckpoint()  # sent once: the writes below must not resend
    lake.merge(DELIVERIES.name, results.select(*DELIVERIES.schema.fieldNames()),
               ["decision_id"], update_existing=False)  # fmt: skip
    dead = results.filter(F.col("status") == "dead_letter").select(
        "decision_id", "person_id", "body", "attempts", "http_status", "error",
        F.col("sent_at").alias("failed_at"),
    )  # fmt: skip
    lake.append(DEAD_LETTERS.name, dead)
    counts = {r["status"]: int(r["count"]) for r in results.groupBy("status").count().collect()}
    out = {"delivered": counts.get("delivered", 0), "dead_letter": counts.get("dead_letter", 0)}
    log.info("webhook delivery: %(delivered)d delivered, %(dead_letter)d dead-lettered", out)
    return out


# ---------------------------------------------------------------------- profile sync

SYNC_RESULT = "person_id string, ok boolean, error string"


def changed_profiles(lake: Lake) -> DataFrame | None:
    """Gold profiles whose fingerprint differs from what was last synced."""
    profiles = gold_profiles(lake)
    if profiles is None:
        return None
    for name, typ in (("segment_id", "int"), ("churn_probability", "double"),
                      ("risk_decile", "int")):  # fmt: skip
        if name not in profiles.columns:
            profiles = profiles.withColumn(name, F.lit(None).cast(typ))
    profiles = profiles.select(
        "person_id",
        "segment_id",
        F.round("churn_probability", 4).alias("churn_probability"),
        "risk_decile",
    ).withColumn(
        "fingerprint",
        F.sha2(F.to_json(F.struct("segment_id", "churn_probability", "risk_decile")), 256),
    )
    if lake.exists(SYNC_STATE.name):
        synced = lake.read(SYNC_STATE.name).select("person_id", "fingerprint")
        profiles = profiles.join(synced, ["person_id", "fingerprint"], "left_anti")
    return profiles


def sync_profiles(lake: Lake, w: WebhookSettings) -> dict[str, int]:
    """POST changed persons in batches of batch_size; mark the ones accepted as synced
    (a failed batch is sent again next run: the sync is incremental and idempotent)."""
    if not w.url:
        raise ConfigError("activation.webhook.url: not set (where profiles are synced to)")
    key = signing_key(w)
    lake.ensure(SYNC_STATE.name)
    changed = changed_profiles(lake)
    if changed is None:
        log.info("profile sync: no gold scores or segments yet")
        return {"synced": 0, "failed": 0}
    changed = changed.localCheckpoint()  # read once: sync_state changes below

    def send(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for pdf in batches:
            for start in range(0, len(pdf), w.batch_size):
                part = pdf.iloc[start : start + w.batch_size]
                records = json.loads(part.drop(columns=["fingerprint"]).to_json(orient="records"))
                body = json.dumps({"kind": "profiles", "profiles": records},
                                  sort_keys=True).encode()  # fmt: skip
                idem = hashlib.sha256(body).hexdigest()[:32]
                got = post(w.url, body, key, idem, w)
                yield pd.DataFrame({"person_id": part["person_id"], "ok": got.ok,
                                    "error": got.error})  # fmt: skip

    results = changed.mapInPandas(send, SYNC_RESULT).localCheckpoint()
    ok = results.filter("ok").select("person_id").join(changed, "person_id")
    lake.merge(SYNC_STATE.name, ok.withColumn("synced_at", F.current_timestamp())
               .select(*SYNC_STATE.schema.fieldNames()), ["person_id"])  # fmt: skip
    counts = {bool(r["ok"]): int(r["count"]) for r in results.groupBy("ok").count().collect()}
    out = {"synced": counts.get(True, 0), "failed": counts.get(False, 0)}
    log.info("profile sync: %(synced)d person(s) sent, %(failed)d failed (retried next run)", out)
    return out
