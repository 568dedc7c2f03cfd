"""The decision API (`behavior-lake serve`): profiles, segment membership and "decide".

Every answer says where it came from: `redis` (the profile cache), `snapshot` (gold read
in-process from Delta with delta-rs, when Redis is down or misses) or `default` (a safe
answer: no nudge, when both fail). Every answer is logged as a JSON line. API keys are
checked against their sha256 (activation.api.key_sha256); each key has a token bucket
(activation.api.rate_per_second, burst one second). OpenAPI docs: /docs, /openapi.json.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Response
from pydantic import BaseModel

from behavior_lake.activation.cache import CacheUnavailable, ProfileCache
from behavior_lake.activation.engine import MS_PER_DAY, MS_PER_HOUR, MS_PER_MIN, holdout_bucket
from behavior_lake.config import ActivationRule, ConfigError, Settings
from behavior_lake.contracts.ml import CHURN_SCORES, USER_SEGMENTS

log = logging.getLogger(__name__)


def person_of_user(user_id: str, key: str) -> str:
    """The pseudonymous person id of a raw user id, as silver computes it (HMAC-SHA256 of
    "user:" + id, first 32 hex characters): the raw id never leaves the server."""
    return hmac.new(key.encode(), f"user:{user_id}".encode(), hashlib.sha256).hexdigest()[:32]


class Snapshot:
    """The latest gold scores and segments, read in-process from Delta (delta-rs), reloaded
    when older than `max_age_seconds`. Small: one row per person."""

    def __init__(self, lake_root: str, max_age_seconds: float = 300.0) -> None:
        self.root = lake_root.rstrip("/")
        self.max_age = max_age_seconds
        self.loaded_at = 0.0
        self.by_person: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def _table(self, name: str):
        import pandas as pd
        from deltalake import DeltaTable

        layer, table = name.split(".")
        df = DeltaTable(f"{self.root}/{layer}/{table}").to_pandas()
        if df.empty:
            return df
        last = df["as_of_date"].max()
        return df[df["as_of_date"] == last].assign(as_of_date=str(pd.Timestamp(last).date()))

    def load(self) -> None:
        profiles: dict[str, dict[str, Any]] = {}
        errors = []
        for name, cols, stamp in (
            (CHURN_SCORES.name, ["churn_probability", "risk_decile"], "scores_as_of"),
            (USER_SEGMENTS.name, ["segment_id", "segment_name"], "segments_as_of"),
        ):
            try:
                df = self._table(name)
            except Exception as exc:
                errors.append(f"{name}: {exc}")
                continue
            for row in df[["person_id", "as_of_date", *cols]].itertuples(index=False):
                p = profiles.setdefault(row.person_id, {})
                p.update({c: _plain(getattr(row, c)) for c in cols})
                p[stamp] = row.as_of_date
        if errors and not profiles:
            raise RuntimeError("; ".join(errors))
        self.by_person, self.loaded_at = profiles, time.monotonic()

    def get(self, person_id: str) -> dict[str, Any] | None:
        with self.lock:
            if time.monotonic() - self.loaded_at > self.max_age:
                self.load()
        return self.by_person.get(person_id)

    def members(self, segment_id: int, limit: int, offset: int) -> list[str]:
        with self.lock:
            if time.monotonic() - self.loaded_at > self.max_age:
                self.load()
        ids = sorted(p for p, v in self.by_person.items() if v.get("segment_id") == segment_id)
        return ids[offset : offset + limit]


def _plain(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    return v


class RateLimiter:
    """A token bucket per API key."""

    def __init__(self, rate: float) -> None:
        self.rate, self.burst = rate, max(1.0, rate)
        self.buckets: dict[str, tuple[float, float]] = {}
        self.lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = time.monotonic()
        with self.lock:
            tokens, at = self.buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            if tokens < 1:
                self.buckets[key] = (tokens, now)
                return False
            self.buckets[key] = (tokens - 1, now)
            return True


@dataclass
class Lookup:
    profile: dict[str, Any] | None
    source: str  # redis | snapshot | default
    note: str | None = None


def _typed(fields: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in fields.items():
        if k in ("churn_probability", "cart_value"):
            out[k] = float(v)
        elif k in ("risk_decile", "segment_id", "last_event_ms"):
            out[k] = int(float(v))
        elif k == "cart_open":
            out[k] = v == "true"
        elif k in ("last_actions", "consents"):
            out[k] = json.loads(v)
        else:
            out[k] = v
    return out


class Profiles:
    """Redis first; on a miss or an outage the snapshot; then the safe default."""

    def __init__(self, cache: ProfileCache | None, snapshot: Snapshot) -> None:
        self.cache, self.snapshot = cache, snapshot

    def lookup(self, person_id: str) -> Lookup:
        note = None
        if self.cache is not None:
            try:
                got = self.cache.get(person_id)
                if got:
                    return Lookup(_typed(got), "redis")
                note = "redis: miss"
            except CacheUnavailable as exc:
                note = f"redis unavailable: {str(exc)[:120]}"
        try:
            snap = self.snapshot.get(person_id)
        except Exception as exc:
            return Lookup(None, "default", f"{note}; snapshot unavailable: {str(exc)[:120]}")
        if snap is None:
            return Lookup(None, "snapshot", f"{note}; not in the gold snapshot")
        return Lookup(dict(snap), "snapshot", note)


def choose(rules: list[ActivationRule], settings: Settings, person: str, profile: dict,
           now_ms: int) -> dict[str, Any]:  # fmt: skip
    """Which nudge, if any, for this person now: the first rule (in configured order) the
    profile qualifies for, then the stream's suppression rules at the current time."""
    a = settings.activation
    for rule in rules:
        if rule.kind == "score":
            ok = (profile.get("churn_probability") or 0) >= rule.threshold
        elif rule.kind == "timer":
            last = profile.get("last_event_ms") or now_ms
            ok = bool(profile.get("cart_open")) and now_ms - last >= rule.minutes * MS_PER_MIN
        else:
            continue  # event and segment-change rules act in the stream only
        if not ok:
            continue
        reason = None
        consents = profile.get("consents") or {}
        start, end = a.quiet_hours.minutes()
        minute = (now_ms % MS_PER_DAY) // MS_PER_MIN
        quiet = start != end and (
            (start < end and start <= minute < end)
            or (start > end and (minute >= start or minute < end))
        )
        last_action = (profile.get("last_actions") or {}).get(rule.id)
        if rule.consent and str(consents.get(rule.consent, "")).lower() != "true":
            reason = "no_consent"
        elif quiet:
            reason = "quiet_hours"
        elif last_action is not None and now_ms - last_action < rule.cooldown_hours * MS_PER_HOUR:
            reason = "cooldown"
        elif holdout_bucket(person, rule.campaign) < rule.holdout_share:
            reason = "holdout"
        return {
            "rule_id": rule.id,
            "campaign": rule.campaign,
            "channel": rule.channel if reason is None else None,
            "act": reason is None,
            "reason": reason,
        }
    return {"rule_id": None, "act": False, "reason": "no_rule_applies"}


class AnswerLog:
    """Every answer, one JSON line (thread-safe append, flushed per line)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"answers-{datetime.now(UTC):%Y%m%d}.jsonl"
        self.fh = self.path.open("a", encoding="utf-8")
        self.lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, sort_keys=True, default=str)
        with self.lock:
            self.fh.write(line + "\n")
            self.fh.flush()


class DecideRequest(BaseModel):
    """Who to decide for: the pseudonymous person id, or the raw user id."""

    person_id: str | None = None
    user_id: str | None = None


def create_app(settings: Settings, profiles: Profiles, answers: AnswerLog, processes: int = 1):
    from fastapi import Depends, FastAPI, Header, HTTPException, Query

    a = settings.activation
    if not a.api.key_sha256:
        raise ConfigError(
            "activation.api.key_sha256: no API key configured; add the sha256 of a key "
            "(echo -n KEY | sha256sum)"
        )
    keys = set(a.api.key_sha256)
    # connections spread over the worker processes: each keeps its share of the key's rate
    limiter = RateLimiter(a.api.rate_per_second / processes)
    rules = [r for r in a.rules if r.enabled]
    app = FastAPI(
        title="behavior-lake decision API",
        version="1",
        description="Profiles, segment membership and next-best nudges from behavior-lake.",
    )

    def caller(x_api_key: str = Header(default="")) -> str:
        digest = hashlib.sha256(x_api_key.encode()).hexdigest()
        if not x_api_key or digest not in keys:
            raise HTTPException(status_code=401, detail="missing or unknown X-API-Key")
        if not limiter.allow(digest):
            raise HTTPException(status_code=429, detail="rate limit exceeded for this key")
        return digest[:12]

    def answer(kind: str, who: str, person: str, body: dict[str, Any], t0: float) -> Response:
        body = {"person_id": person, **body}
        answers.write({"at": datetime.now(UTC).isoformat(), "kind": kind, "key": who,
                       "ms": round((time.perf_counter() - t0) * 1000, 3), **body})  # fmt: skip
        # serialized here: no response-model validation or generic encoder per request
        return Response(json.dumps(body, default=str), media_type="application/json")

    @app.get("/v1/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "snapshot_loaded": profiles.snapshot.loaded_at > 0}

    @app.get("/v1/profiles/{person_id}")
    def profile(person_id: str, who: str = Depends(caller)) -> Response:
        t0 = time.perf_counter()
        got = profiles.lookup(person_id)
        return answer("profile", who, person_id,
                      {"source": got.source, "note": got.note, "profile": got.profile}, t0)  # fmt: skip

    @app.get("/v1/users/{user_id}/profile")
    def user_profile(user_id: str, who: str = Depends(caller)) -> Response:
        return profile(person_of_user(user_id, settings.privacy.pseudonym_key), who)

    @app.get("/v1/segments/{segment_id}/members")
    def members(segment_id: int, limit: int = Query(100, ge=1, le=10000),
                offset: int = Query(0, ge=0), who: str = Depends(caller)) -> Response:  # fmt: skip
        t0 = time.perf_counter()
        try:
            ids = profiles.snapshot.members(segment_id, limit, offset)
            source = "snapshot"
        except Exception:
            ids, source = [], "default"
        return answer("members", who, "", {"segment_id": segment_id, "source": source,
                                           "members": ids, "offset": offset}, t0)  # fmt: skip

    @app.post("/v1/decide")
    def decide(req: DecideRequest, who: str = Depends(caller)) -> Response:
        t0 = time.perf_counter()
        if not req.person_id and not req.user_id:
            raise HTTPException(status_code=422, detail="person_id or user_id is required")
        person = req.person_id or person_of_user(req.user_id or "", settings.privacy.pseudonym_key)
        got = profiles.lookup(person)
        now_ms = int(time.time() * 1000)
        if got.profile is None:
            nudge = {"rule_id": None, "act": False, "reason": "no_profile"}
        else:
            nudge = choose(rules, settings, person, got.profile, now_ms)
        return answer("decide", who, person,
                      {"source": got.source, "note": got.note, "nudge": nudge}, t0)  # fmt: skip

    return app


def build_app(settings: Settings, processes: int = 1):
    """The app over the configured Redis and the lake's gold snapshot (one of `processes`
    worker processes serving the same port)."""
    from behavior_lake.activation.cache import client

    a = settings.activation
    snapshot = Snapshot(settings.lake.root)
    try:
        snapshot.load()
    except Exception as exc:
        log.warning("gold snapshot not loaded (%s): profiles come from redis only", exc)
    cache = ProfileCache(a.redis, client(a.redis))
    folder = Path(settings.lake.root) / a.api.answer_log
    return create_app(settings, Profiles(cache, snapshot), AnswerLog(folder), processes)


SERVE_ARGS_ENV = "BEHAVIOR_LAKE_SERVE_ARGS"


def app_from_env():
    """The app of one uvicorn worker process (`serve` with activation.api.workers > 1):
    settings from the environment `serve` sets, as JSON {"env": ..., "conf": [...]}."""
    from behavior_lake.config import load_settings
    from behavior_lake.logs import configure

    args = json.loads(os.environ[SERVE_ARGS_ENV])
    settings = load_settings(args["env"], args["conf"])
    configure(settings.logging.level, settings.logging.format)
    return build_app(settings, settings.activation.api.workers)


def serve(env: str, conf: list[str], host: str | None, port: int | None) -> int:
    """Run the API with uvicorn (`behavior-lake serve`): activation.api.workers processes."""
    import sys

    import uvicorn

    from behavior_lake.config import load_settings
    from behavior_lake.logs import configure

    try:
        settings = load_settings(env, conf)
        app = build_app(settings) if settings.activation.api.workers == 1 else None
    except ConfigError as exc:
        print(f"behavior-lake serve: {exc}", file=sys.stderr)
        return 2
    configure(settings.logging.level, settings.logging.format)
    api = settings.activation.api
    where = {"host": host or api.host, "port": port or api.port, "log_level": "warning"}
    if app is not None:
        uvicorn.run(app, **where)
        return 0
    os.environ[SERVE_ARGS_ENV] = json.dumps({"env": env, "conf": conf})
    log.info(
        "decision API: %d worker processes on %s:%s", api.workers, where["host"], where["port"]
    )
    target = "behavior_lake.activation.api:app_from_env"
    uvicorn.run(target, factory=True, workers=api.workers, **where)
    return 0
