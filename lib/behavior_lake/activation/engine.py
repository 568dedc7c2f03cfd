"""The decision engine: one person's events in event-time order -> decisions.

Pure Python over a JSON-serialisable state, so that the stream (transformWithStateInPandas)
and the replay from silver (applyInPandas over the same rows) run the same code and
reach the same decisions. Everything is decided in event time: cooldowns, the daily cap
and quiet hours look at the time of the trigger, never at the wall clock; only
`decided_at` and the latency are wall-clock facts.

Suppression order (the first that applies is the reason): erased subject, no consent,
quiet hours, cooldown, daily cap, holdout. The holdout comes last so that held-out persons
are exactly as eligible as those who get the action (lift compares like with like), and a
holdout decision uses up cooldown and cap the way an action would.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from behavior_lake.config import ActivationRule, ActivationSettings

MS_PER_MIN = 60_000
MS_PER_HOUR = 3_600_000
MS_PER_DAY = 86_400_000

FIRED = "fired"
SUPPRESSED = "suppressed"
REASONS = ("erased", "no_consent", "quiet_hours", "cooldown", "cap", "holdout")


def holdout_bucket(person_id: str, campaign: str) -> float:
    """A stable number in [0, 1) from the person and the campaign (sha256): the person is
    held out of the campaign when it is below the rule's holdout share."""
    digest = hashlib.sha256(f"{person_id}|{campaign}".encode()).hexdigest()
    return int(digest[:13], 16) / float(1 << 52)


def decision_id(person_id: str, rule: ActivationRule, trigger: str) -> str:
    """Deterministic: the same trigger of the same rule version decides once (webhook
    idempotency key; stream and replay produce the same ids)."""
    raw = f"{person_id}|{rule.id}|{rule.version}|{trigger}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclass
class Event:
    """One silver-shaped event as the engine sees it (see activation.inputs)."""

    message_id: str
    event: str
    ts_ms: int
    value: float | None = None
    consents: dict[str, str] = field(default_factory=dict)
    churn_probability: float | None = None
    segment_id: int | None = None
    segment_name: str | None = None
    erased: bool = False
    landed_ms: int | None = None


@dataclass
class Decision:
    decision_id: str
    person_id: str
    rule_id: str
    rule_version: int
    campaign: str
    channel: str
    trigger: str  # the triggering message id, or "timer:<deadline ms>"
    decision_ts_ms: int
    outcome: str
    reason: str | None
    inputs: str  # JSON: what the decision looked at
    payload: str  # JSON: the rendered template (also for holdouts: what would have gone)
    landed_ms: int | None


def _state_defaults() -> dict[str, Any]:
    return {
        "last_ms": None,
        "pending": {},  # rule id -> {deadline, trigger, value}
        "cart_value": 0.0,
        "cart_open": False,
        "last_action": {},  # rule id -> decision ts (fired or held out)
        "day": None,
        "day_count": 0,
        "churn": None,
        "segment_id": None,
        "segment_name": None,
        "consents": {},
        "erased": False,
        "seen": {},  # message id -> event ms (duplicates inside the lateness window)
        "session_start_ms": None,  # the current session (silver's inactivity gap)
        "session_events": 0,
        "hourly": {},  # event hour (ms // 1 h) -> events, the last 24 hours
    }


def load_state(text: str | None) -> dict[str, Any]:
    state = _state_defaults()
    if text:
        state.update(json.loads(text))
    return state


def dump_state(state: dict[str, Any]) -> str:
    return json.dumps(state, separators=(",", ":"), sort_keys=True)


def _fmt(template: str, values: dict[str, Any]) -> str:
    class Missing(dict):
        def __missing__(self, key: str) -> str:
            return ""

    return template.format_map(Missing(values))


class Engine:
    """Applies the rules of `settings` to one person's state."""

    def __init__(self, settings: ActivationSettings, session_gap_minutes: int = 30) -> None:
        self.s = settings
        self.session_gap_ms = session_gap_minutes * MS_PER_MIN
        self.rules = [r for r in settings.rules if r.enabled]
        self.quiet = settings.quiet_hours.minutes()
        self.dedup_ms = (settings.watermark_minutes + 24 * 60) * MS_PER_MIN

    # ------------------------------------------------------------------ entry points

    def on_event(self, state: dict[str, Any], person: str, ev: Event) -> list[Decision]:
        if ev.message_id in state["seen"]:
            return []
        out = self.on_deadline(state, person, ev.ts_ms - 1)
        state["seen"][ev.message_id] = ev.ts_ms
        state["seen"] = {m: t for m, t in state["seen"].items() if t >= ev.ts_ms - self.dedup_ms}
        self._activity(state, ev.ts_ms)
        state["last_ms"] = max(state["last_ms"] or ev.ts_ms, ev.ts_ms)
        state["consents"].update({k: v for k, v in ev.consents.items() if v is not None})
        state["erased"] = bool(ev.erased)
        prev_churn, prev_segment = state["churn"], state["segment_id"]
        if ev.churn_probability is not None:
            state["churn"] = ev.churn_probability
        if ev.segment_id is not None:
            state["segment_id"], state["segment_name"] = ev.segment_id, ev.segment_name
        self._cart(state, ev)
        for rule in self.rules:
            hit = self._triggered(rule, state, ev, prev_churn, prev_segment)
            if hit:
                out.append(self.decide(state, person, rule, ev.ts_ms, ev.message_id, ev))
        return out

    def on_deadline(self, state: dict[str, Any], person: str, upto_ms: int) -> list[Decision]:
        """Fire the pending timer rules whose deadline is at or before `upto_ms`."""
        out = []
        due = sorted(
            (p["deadline"], rid) for rid, p in state["pending"].items() if p["deadline"] <= upto_ms
        )
        for deadline, rid in due:
            pending = state["pending"].pop(rid)
            rule = next((r for r in self.rules if r.id == rid), None)
            if rule is None:
                continue
            ev = Event(
                message_id=pending["trigger"],
                event=rule.event,
                ts_ms=deadline,
                value=pending.get("value"),
                erased=state["erased"],
            )
            out.append(self.decide(state, person, rule, deadline, f"timer:{deadline}", ev))
        return out

    def next_deadline(self, state: dict[str, Any]) -> int | None:
        deadlines = [p["deadline"] for p in state["pending"].values()]
        return min(deadlines) if deadlines else None

    # ------------------------------------------------------------------ rules

    def _activity(self, state: dict[str, Any], ts_ms: int) -> None:
        """Session (a new one after silver's inactivity gap) and events per hour over the
        last 24 hours. A late event counts in the current session."""
        last = state["last_ms"]
        if last is None or ts_ms - last > self.session_gap_ms:
            state["session_start_ms"], state["session_events"] = ts_ms, 0
        state["session_events"] += 1
        hour = ts_ms // MS_PER_HOUR
        hourly = state["hourly"]
        hourly[str(hour)] = hourly.get(str(hour), 0) + 1
        newest = max(hour, *(int(h) for h in hourly))
        state["hourly"] = {h: n for h, n in hourly.items() if int(h) > newest - 24}

    def _cart(self, state: dict[str, Any], ev: Event) -> None:
        if ev.event == "Product Added":
            state["cart_open"] = True
            state["cart_value"] = round(state["cart_value"] + (ev.value or 0.0), 2)
        elif ev.event == "Order Completed":
            state["cart_open"], state["cart_value"] = False, 0.0

    def _triggered(
        self,
        rule: ActivationRule,
        state: dict[str, Any],
        ev: Event,
        prev_churn: float | None,
        prev_segment: int | None,
    ) -> bool:
        if rule.kind == "event":
            return ev.event == rule.event and (ev.value or 0.0) >= rule.min_value
        if rule.kind == "timer":
            if ev.event == rule.unless_event:
                state["pending"].pop(rule.id, None)
            elif ev.event == rule.event:
                # the clock starts at the first trigger; the value follows the cart
                pending = state["pending"].setdefault(
                    rule.id,
                    {"deadline": ev.ts_ms + rule.minutes * MS_PER_MIN, "trigger": ev.message_id},
                )
                pending["value"] = state["cart_value"]
            return False
        if rule.kind == "score":
            now = state["churn"]
            before = -math.inf if prev_churn is None else prev_churn
            return now is not None and before < rule.threshold <= now
        if rule.kind == "segment_change":
            now = state["segment_id"]
            return prev_segment is not None and now is not None and now != prev_segment
        return False

    def _suppression(
        self, state: dict[str, Any], person: str, rule: ActivationRule, ts_ms: int
    ) -> str | None:
        if state["erased"]:
            return "erased"
        if rule.consent and str(state["consents"].get(rule.consent, "")).lower() != "true":
            return "no_consent"
        start, end = self.quiet
        minute = (ts_ms % MS_PER_DAY) // MS_PER_MIN
        if start != end and (
            (start < end and start <= minute < end)
            or (start > end and (minute >= start or minute < end))
        ):
            return "quiet_hours"
        last = state["last_action"].get(rule.id)
        if last is not None and ts_ms - last < rule.cooldown_hours * MS_PER_HOUR:
            return "cooldown"
        day = datetime.fromtimestamp(ts_ms / 1000, UTC).date().isoformat()
        if state["day"] != day:
            state["day"], state["day_count"] = day, 0
        if state["day_count"] >= self.s.daily_cap_per_person:
            return "cap"
        if holdout_bucket(person, rule.campaign) < rule.holdout_share:
            return "holdout"
        return None

    def decide(
        self,
        state: dict[str, Any],
        person: str,
        rule: ActivationRule,
        ts_ms: int,
        trigger: str,
        ev: Event,
    ) -> Decision:
        reason = self._suppression(state, person, rule, ts_ms)
        if reason in (None, "holdout"):
            state["last_action"][rule.id] = ts_ms
            state["day_count"] += 1
        values = {
            "event": ev.event,
            "value": ev.value,
            "cart_value": ev.value if rule.kind == "timer" else state["cart_value"],
            "churn_probability": state["churn"],
            "segment_id": state["segment_id"],
            "segment_name": state["segment_name"],
        }
        inputs = {
            **values,
            "consent": state["consents"].get(rule.consent) if rule.consent else None,
            "day_count": state["day_count"],
            "session_events": state["session_events"],
            "events_24h": sum(state["hourly"].values()),
            "trigger_event_ts_ms": ev.ts_ms,
        }
        payload = {k: _fmt(v, values) for k, v in sorted(rule.payload.items())}
        return Decision(
            decision_id=decision_id(person, rule, trigger),
            person_id=person,
            rule_id=rule.id,
            rule_version=rule.version,
            campaign=rule.campaign,
            channel=rule.channel,
            trigger=trigger,
            decision_ts_ms=ts_ms,
            outcome=FIRED if reason is None else SUPPRESSED,
            reason=reason,
            inputs=json.dumps(inputs, sort_keys=True, default=str),
            payload=json.dumps(payload, sort_keys=True),
            landed_ms=ev.landed_ms,
        )


def decision_rows(decisions: list[Decision]) -> list[dict[str, Any]]:
    return [asdict(d) for d in decisions]
