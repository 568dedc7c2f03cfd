"""The decision engine: rules, suppression reasons and their order, holdouts, timers."""

from __future__ import annotations

import itertools
import random
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from behavior_lake.activation.engine import (
    Engine,
    Event,
    dump_state,
    holdout_bucket,
    load_state,
)
from behavior_lake.config import ActivationRule, ActivationSettings, ConfigError, load_settings
from tests.conftest import CONF

YES = {"Advertising": "true"}


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def rule(**kw) -> ActivationRule:
    base = dict(
        id="r", kind="event", campaign="c", channel="email", event="Order Completed",
        consent="Advertising", cooldown_hours=24.0, holdout_share=0.0,
    )  # fmt: skip
    base.update(kw)
    return ActivationRule(**base)


def engine(*rules: ActivationRule, cap: int = 3, quiet=("22:00", "07:00")) -> Engine:
    from behavior_lake.config import QuietHours

    return Engine(
        ActivationSettings(
            rules=list(rules), daily_cap_per_person=cap, quiet_hours=QuietHours(*quiet)
        )
    )


def ev(mid: str, event: str, when: str, **kw) -> Event:
    return Event(message_id=mid, event=event, ts_ms=ms(when), consents=kw.pop("c", YES), **kw)


def outcomes(decisions) -> list[tuple[str, str | None]]:
    return [(d.outcome, d.reason) for d in decisions]


def test_event_rule_fires_then_cooldown_then_fires_again() -> None:
    e, st = engine(rule(cooldown_hours=2)), load_state(None)
    assert outcomes(e.on_event(st, "p", ev("1", "Order Completed", "2026-01-05 10:00"))) == [
        ("fired", None)
    ]
    assert outcomes(e.on_event(st, "p", ev("2", "Order Completed", "2026-01-05 11:00"))) == [
        ("suppressed", "cooldown")
    ]
    assert outcomes(e.on_event(st, "p", ev("3", "Order Completed", "2026-01-05 12:30"))) == [
        ("fired", None)
    ]
    # other events do not trigger it
    assert e.on_event(st, "p", ev("4", "Page Viewed", "2026-01-05 12:31")) == []


def test_min_value_duplicates_and_state_round_trip() -> None:
    e, st = engine(rule(min_value=100, cooldown_hours=0)), load_state(None)
    assert e.on_event(st, "p", ev("1", "Order Completed", "2026-01-05 10:00", value=50)) == []
    first = e.on_event(st, "p", ev("2", "Order Completed", "2026-01-05 10:01", value=150))
    assert outcomes(first) == [("fired", None)]
    st = load_state(dump_state(st))  # what the stream stores between micro-batches
    # the same message again (an at-least-once producer) decides nothing
    assert e.on_event(st, "p", ev("2", "Order Completed", "2026-01-05 10:01", value=150)) == []


def test_suppression_reasons_in_order() -> None:
    e = engine(rule(cooldown_hours=0))
    erased = e.on_event(load_state(None), "p", ev("1", "Order Completed", "2026-01-05 10:00",
                                                   erased=True, c={}))  # fmt: skip
    assert outcomes(erased) == [("suppressed", "erased")]
    no = e.on_event(load_state(None), "p", ev("1", "Order Completed", "2026-01-05 10:00", c={}))
    assert outcomes(no) == [("suppressed", "no_consent")]
    refused = ev("1", "Order Completed", "2026-01-05 10:00", c={"Advertising": "false"})
    assert outcomes(e.on_event(load_state(None), "p", refused)) == [("suppressed", "no_consent")]
    # quiet hours cross midnight: 23:30 and 06:59 are quiet, 07:00 is not
    for when, expected in (("2026-01-05 23:30", "quiet_hours"), ("2026-01-05 06:59", "quiet_hours"),
                           ("2026-01-05 07:00", None)):  # fmt: skip
        got = e.on_event(load_state(None), "p", ev("1", "Order Completed", when))
        assert got[0].reason == expected, when
    # consent given on an earlier event is remembered
    st = load_state(None)
    e.on_event(st, "p", ev("0", "Page Viewed", "2026-01-05 09:00"))
    assert outcomes(e.on_event(st, "p", ev("1", "Order Completed", "2026-01-05 10:00", c={}))) == [
        ("fired", None)
    ]


def test_daily_cap_across_rules_resets_next_day() -> None:
    rules = [rule(id=f"r{i}", event="Order Completed", cooldown_hours=0) for i in range(3)]
    e, st = engine(*rules, cap=4), load_state(None)
    day1 = e.on_event(st, "p", ev("1", "Order Completed", "2026-01-05 10:00"))
    day1 += e.on_event(st, "p", ev("2", "Order Completed", "2026-01-05 11:00"))
    assert [d.reason for d in day1] == [None, None, None, None, "cap", "cap"]
    day2 = e.on_event(st, "p", ev("3", "Order Completed", "2026-01-06 10:00"))
    assert [d.reason for d in day2] == [None, None, None]


def test_holdout_is_deterministic_and_near_its_share_on_generated_traffic() -> None:
    e = engine(rule(holdout_share=0.2, cooldown_hours=0))
    rng = random.Random(7)
    persons = [f"{rng.getrandbits(128):032x}" for _ in range(5000)]
    held = 0
    for p in persons:
        d = e.on_event(load_state(None), p, ev("1", "Order Completed", "2026-01-05 10:00"))[0]
        assert (d.reason == "holdout") == (holdout_bucket(p, "c") < 0.2)
        held += d.reason == "holdout"
        if d.reason == "holdout":  # what would have gone is logged
            assert d.outcome == "suppressed" and d.payload is not None
    assert 0.18 < held / len(persons) < 0.22
    # another campaign splits the persons differently (not the same 20% every time)
    other = {p for p in persons if holdout_bucket(p, "other") < 0.2}
    same = {p for p in persons if holdout_bucket(p, "c") < 0.2}
    assert len(other & same) < 0.5 * len(same)
    assert holdout_bucket("x", "c") == holdout_bucket("x", "c")


def test_rate_limits_hold_on_generated_traffic() -> None:
    """A noisy person: many orders a day for a week. No more than the cap a day, never
    two actions of a rule within its cooldown."""
    rules = [rule(id="a", cooldown_hours=3), rule(id="b", cooldown_hours=1)]
    e, st = engine(*rules, cap=3, quiet=("00:00", "00:00")), load_state(None)
    rng = random.Random(3)
    out = []
    for day in range(7):
        for i in range(40):
            when = ms(f"2026-01-{5 + day:02d} 00:00") + rng.randrange(86_400_000)
            out += e.on_event(st, "p", Event(f"{day}-{i}", "Order Completed", when, consents=YES))
    acted = sorted((d.decision_ts_ms, d.rule_id) for d in out if d.reason in (None, "holdout"))
    per_day: dict[int, int] = {}
    for t, _ in acted:
        per_day[t // 86_400_000] = per_day.get(t // 86_400_000, 0) + 1
    assert max(per_day.values()) == 3 and len(per_day) == 7
    for r, hours in (("a", 3), ("b", 1)):
        times = [t for t, rid in acted if rid == r]
        assert all(b - a >= hours * 3_600_000 for a, b in itertools.pairwise(times))
    assert {d.reason for d in out} >= {"cap", "cooldown"}


def test_timer_fires_unless_the_order_comes_first() -> None:
    cart = rule(id="cart", kind="timer", event="Product Added", unless_event="Order Completed",
                minutes=30, payload={"v": "{cart_value}"})  # fmt: skip
    e = engine(cart)
    st = load_state(None)
    e.on_event(st, "p", ev("1", "Product Added", "2026-01-05 10:00", value=20.0))
    e.on_event(st, "p", ev("2", "Product Added", "2026-01-05 10:10", value=5.5))
    assert e.next_deadline(st) == ms("2026-01-05 10:30")
    assert e.on_deadline(st, "p", ms("2026-01-05 10:29")) == []
    fired = e.on_deadline(st, "p", ms("2026-01-05 10:30"))
    assert outcomes(fired) == [("fired", None)] and fired[0].trigger.startswith("timer:")
    assert fired[0].payload == '{"v": "25.5"}'
    # the order within the window cancels it
    st = load_state(None)
    e.on_event(st, "p", ev("1", "Product Added", "2026-01-05 10:00", value=20.0))
    e.on_event(st, "p", ev("2", "Order Completed", "2026-01-05 10:20"))
    assert e.next_deadline(st) is None and e.on_deadline(st, "p", ms("2026-01-06 00:00")) == []
    # an event after the deadline fires the timer first (event time, as in a replay)
    st = load_state(None)
    e.on_event(st, "p", ev("1", "Product Added", "2026-01-05 10:00", value=20.0))
    late = e.on_event(st, "p", ev("2", "Order Completed", "2026-01-05 11:00"))
    assert outcomes(late) == [("fired", None)]


def test_score_crossing_and_segment_change() -> None:
    risk = rule(id="risk", kind="score", threshold=0.7, event="")
    moved = rule(id="moved", kind="segment_change", event="", consent="")
    e, st = engine(risk, moved), load_state(None)

    def at(mid, p, seg):
        return e.on_event(st, "x", ev(mid, "Page Viewed", f"2026-01-05 1{mid}:00",
                                      churn_probability=p, segment_id=seg, segment_name=f"s{seg}"))  # fmt: skip

    assert at("0", 0.5, 1) == []
    assert [d.rule_id for d in at("1", 0.75, 1)] == ["risk"]  # crossed upwards
    assert at("2", 0.8, 1) == []  # still above: no new crossing
    assert at("3", 0.6, 1) == []
    assert [d.rule_id for d in at("4", 0.71, 2)] == ["risk", "moved"]


def test_rules_fail_at_start_up_naming_the_key() -> None:
    cases = [
        ("activation.rules=[{id: Bad-Id, kind: event, event: x, campaign: c, channel: e}]",
         "activation.rules[0].id"),
        ("activation.rules=[{id: t, kind: timer, event: x, campaign: c, channel: e, minutes: 5}]",
         "activation.rules[0].unless_event"),
        ("activation.rules=[{id: t, kind: sms, campaign: c, channel: e}]",
         "activation.rules[0].kind"),
        ("activation.rules=[{id: s, kind: score, campaign: c, channel: e, threshold: 2}]",
         "activation.rules[0].threshold"),
        ("activation.rules=[{id: a, kind: event, event: x, campaign: c, channel: e, holdout_share: 1}]",
         "activation.rules[0].holdout_share"),
        ("activation.quiet_hours.start=25:00", "activation.quiet_hours.start"),
        ("activation.daily_cap_per_person=0", "activation.daily_cap_per_person"),
    ]  # fmt: skip
    for override, key in cases:
        with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
            load_settings("local", [override], conf_dir=CONF)
    # positive control: the shipped rules load
    s = load_settings("local", conf_dir=CONF)
    assert {r.kind for r in s.activation.rules} == {"event", "timer", "score", "segment_change"}
    assert replace(s.activation.rules[0], version=2).version == 2


def test_session_and_recent_counts_follow_event_time() -> None:
    import json

    e, st = engine(rule(cooldown_hours=0)), load_state(None)
    for i, t in enumerate(["09:00", "09:10", "09:35"]):  # 25 min gaps: one session
        e.on_event(st, "p", ev(f"a{i}", "Page Viewed", f"2026-01-05 {t}"))
    assert st["session_events"] == 3 and st["session_start_ms"] == ms("2026-01-05 09:00")
    # 31 minutes of silence (silver's 30-minute gap): a new session, same day's counts
    (d,) = e.on_event(st, "p", ev("b", "Order Completed", "2026-01-05 10:06"))
    assert st["session_events"] == 1 and st["session_start_ms"] == ms("2026-01-05 10:06")
    inputs = json.loads(d.inputs)
    assert inputs["session_events"] == 1 and inputs["events_24h"] == 4
    # counts are kept per hour for the last 24 hours; the state survives a round trip
    st = load_state(dump_state(st))
    (d,) = e.on_event(st, "p", ev("c", "Order Completed", "2026-01-06 09:59"))
    assert json.loads(d.inputs)["events_24h"] == 2  # yesterday's 10:06 and now
    (d,) = e.on_event(st, "p", ev("d", "Order Completed", "2026-01-06 10:00"))
    assert json.loads(d.inputs)["events_24h"] == 2  # yesterday's hour 10 has left
