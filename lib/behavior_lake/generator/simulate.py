"""Per-person behaviour simulation: latent archetypes -> Segment-spec messages.

Pure Python, deterministic: everything about person `idx` comes from
`random.Random(f"{seed}:{idx}")`, so any partitioning of persons over Spark tasks
produces the same events. This module runs inside executors (generator only; the
pipeline never imports it).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from behavior_lake.config import PlantedExperiment

ARCHETYPES: dict[str, dict[str, float]] = {
    # share, sessions/week, mean events/session, P(purchase | session), order value,
    # weekly churn hazard, P(coupon | purchase)
    "power_buyer": dict(
        share=0.15, spw=6.0, events=14, buy=0.30, aov=120.0, hazard=0.01, coupon=0.1
    ),
    "browser": dict(share=0.30, spw=3.0, events=9, buy=0.02, aov=40.0, hazard=0.04, coupon=0.05),
    "deal_seeker": dict(
        share=0.20, spw=4.0, events=10, buy=0.12, aov=35.0, hazard=0.03, coupon=0.8
    ),
    "at_risk": dict(share=0.20, spw=1.5, events=5, buy=0.04, aov=50.0, hazard=0.25, coupon=0.1),
    "new_user": dict(share=0.15, spw=3.0, events=7, buy=0.08, aov=60.0, hazard=0.08, coupon=0.2),
}
PLATFORMS = {
    "web": (
        "analytics.js",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
    ),
    "ios": ("analytics-ios", "ShopApp/5.2 (iPhone; iOS 18.1)"),
    "android": ("analytics-android", "ShopApp/5.2 (Linux; Android 15; Pixel 8)"),
}
BOT_AGENTS = [
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "python-requests/2.32.3",
    "Scrapy/2.11 (+https://scrapy.org)",
]
JUNK_IDS = ["null", "undefined", "0", "anonymous", ""]
CATEGORIES = ["shoes", "bags", "jackets", "watches", "toys", "books"]
# Churners fade before they stop (as real churners do): over the FADE_DAYS before
# churn_day their engagement level falls linearly to FADE_FLOOR. Sessions get shallower
# (events and purchases scale with the level) and a little rarer (rate x (1 + level) / 2),
# so behaviour trends carry signal that plain recency does not.
FADE_DAYS = 28
FADE_FLOOR = 0.2
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 2, 3, 5, 6, 6, 6, 6, 7, 6, 6, 6, 6, 7, 9, 10, 10, 8, 5, 2]


@dataclass
class Device:
    anonymous_id: str
    platform: str
    signin_session: int  # the device's n-th session identifies the person (0 = never)
    uses_alias: bool


@dataclass
class Person:
    idx: int
    user_id: str
    archetype: str
    is_bot: bool
    first_day: int
    churn_day: int | None
    devices: list[Device]
    consent: str  # granted | denied | withdrawn
    consent_withdrawn_day: int | None
    email: str
    sessions: int = 0
    orders: int = 0
    revenue: float = 0.0
    events: int = 0
    last_event_ts: str | None = None
    faults: dict[str, int] = field(default_factory=dict)
    # experiment id -> variation, exposure_day, logged (exposure event sent), cross
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class FaultConfig:
    malformed_json: float
    truncated_line: float
    missing_field: float
    wrong_type: float
    unknown_event: float
    duplicate: float
    late: float
    future_timestamp: float
    undeclared_property: float
    max_late_days: int


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _poisson(rng: random.Random, lam: float) -> int:
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def make_person(seed: int, idx: int, days: int, bot_share: float) -> tuple[Person, random.Random]:
    rng = random.Random(f"{seed}:{idx}")
    is_bot = rng.random() < bot_share
    names = list(ARCHETYPES)
    archetype = rng.choices(names, weights=[ARCHETYPES[n]["share"] for n in names])[0]
    p = ARCHETYPES[archetype]
    first_day = rng.randrange(max(1, days * 2 // 3)) if archetype == "new_user" else 0
    churn_day = None
    week = first_day // 7
    while week * 7 < days and not is_bot:
        if week * 7 >= first_day + 7 and rng.random() < p["hazard"]:
            churn_day = week * 7 + rng.randrange(7)
            break
        week += 1
    n_dev = 1 if is_bot else rng.choices([1, 2, 3], weights=[55, 35, 10])[0]
    devices = []
    for d in range(n_dev):
        platform = "web" if is_bot else rng.choices(list(PLATFORMS), weights=[6, 2, 2])[0]
        anon = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if not is_bot and d == 0 and rng.random() < 0.01:
            anon = rng.choice(JUNK_IDS)  # broken SDKs send placeholder ids
        signin = 0 if is_bot or rng.random() < 0.15 else rng.randint(1, 3)
        devices.append(Device(anon, platform, signin, rng.random() < 0.1))
    r = rng.random()
    consent = "denied" if r < 0.04 else "withdrawn" if r < 0.08 else "granted"
    withdrawn = rng.randrange(first_day, days) if consent == "withdrawn" else None
    person = Person(
        idx=idx,
        user_id=f"u{idx:07d}",
        archetype="bot" if is_bot else archetype,
        is_bot=is_bot,
        first_day=first_day,
        churn_day=churn_day,
        devices=devices,
        consent=consent,
        consent_withdrawn_day=withdrawn,
        email=f"user{idx}@example.com",
    )
    return person, rng


def _page(rng: random.Random, kind: str) -> dict[str, Any]:
    path = {
        "home": "/",
        "search": "/search",
        "list": f"/c/{rng.choice(CATEGORIES)}",
        "product": f"/p/sku-{rng.randrange(500):04d}",
        "cart": "/cart",
        "checkout": "/checkout",
    }[kind]
    return {
        "path": path,
        "url": f"https://shop.example.com{path}",
        "title": kind.title(),
        "referrer": rng.choice(["", "https://www.google.com/", "https://news.example.org/"]),
    }


class _Session:
    """Emits the messages of one session."""

    def __init__(
        self,
        person: Person,
        device: Device,
        rng: random.Random,
        start: datetime,
        identified: bool,
        day: int,
    ) -> None:
        self.p, self.d, self.rng, self.ts = person, device, rng, start
        self.identified = identified
        self.day = day
        self.out: list[dict[str, Any]] = []

    def _consent(self) -> bool:
        p = self.p
        if p.consent == "denied":
            return False
        return not (
            p.consent == "withdrawn"
            and p.consent_withdrawn_day is not None
            and self.day >= p.consent_withdrawn_day
        )

    def emit(
        self,
        mtype: str,
        event: str | None = None,
        props: dict | None = None,
        traits: dict | None = None,
        previous_id: str | None = None,
    ) -> None:
        rng = self.rng
        library, ua = PLATFORMS[self.d.platform]
        if self.p.is_bot:
            ua = BOT_AGENTS[self.p.idx % len(BOT_AGENTS)]
        ctx: dict[str, Any] = {
            "ip": f"10.{self.p.idx % 250}.{rng.randrange(250)}.{rng.randrange(250)}",
            "userAgent": ua,
            "locale": rng.choice(["en-US", "de-DE", "fr-FR", "ja-JP"]),
            "library": {"name": library, "version": "5.2.0"},
            "device": {"type": "desktop" if self.d.platform == "web" else "mobile"},
            "os": {"name": {"web": "Linux", "ios": "iOS", "android": "Android"}[self.d.platform]},
            "consent": {
                "categoryPreferences": {
                    "Analytics": self._consent(),
                    "Advertising": self.rng.random() < 0.5,
                }
            },
        }
        msg: dict[str, Any] = {
            "messageId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "type": mtype,
            "anonymousId": self.d.anonymous_id,
            "timestamp": _iso(self.ts),
            "context": ctx,
        }
        if self.identified or mtype in ("identify", "alias"):
            msg["userId"] = self.p.user_id
        if event:
            msg["event"] = event
        if mtype == "page":
            ctx["page"] = {"path": props["path"], "url": props["url"]} if props else {}
        if props is not None:
            msg["properties"] = props
        if traits is not None:
            msg["traits"] = traits
        if previous_id is not None:
            msg["previousId"] = previous_id
        self.out.append(msg)
        gap = rng.uniform(1, 3) if self.p.is_bot else min(rng.expovariate(1 / 40), 1200)
        self.ts += timedelta(seconds=gap)

    def view(self, kind: str) -> None:
        if self.d.platform == "web":
            self.emit("page", None, _page(self.rng, kind))
        else:
            self.emit("screen", None, {"name": kind.title()})


def fade(churn_day: int | None, day: int) -> float:
    """Session-rate multiplier on `day` for a person who churns on `churn_day`."""
    if churn_day is None or churn_day - day > FADE_DAYS:
        return 1.0
    return FADE_FLOOR + (1 - FADE_FLOOR) * (churn_day - day) / FADE_DAYS


def assign_variation(seed: int, exp: PlantedExperiment, user_id: str) -> str:
    """Deterministic split: a hash of (seed, experiment, user) against the planned shares."""
    h = int(hashlib.sha256(f"{seed}:{exp.id}:{user_id}".encode()).hexdigest()[:15], 16) / 16**15
    shares = exp.shares or [1.0] * len(exp.variations)
    acc = 0.0
    for variation, share in zip(exp.variations, shares, strict=True):
        acc += share / sum(shares)
        if h < acc:
            return variation
    return exp.variations[-1]


def effect_multipliers(
    person: Person, experiments: Sequence[PlantedExperiment], day: int, names: Sequence[str]
) -> dict[str, float]:
    """Planted effects `names` acting now: the product of the multipliers of every
    experiment the person has been exposed to in a non-control variation (the first
    variation is the control). Exposure happens at a session's start, so purchase
    effects (buy, aov) act from that session on; the session rate, drawn per day, from
    the next day on."""
    out = dict.fromkeys(names, 1.0)
    for exp in experiments:
        seen = person.experiments.get(exp.id)
        if not seen or seen["variation"] == exp.variations[0]:
            continue
        for name in names:
            started = seen["exposure_day"] < day or (
                name != "sessions" and seen["exposure_day"] == day
            )
            if started and name in exp.effects:
                out[name] *= exp.effects[name]
    return out


# Planted effect -> the default metrics (conf/base/experiments.yml) whose expected
# relative lift it sets: orders scale with the purchase probability (and revenue with
# them), revenue with the order value, sessions with the session rate (from the day
# after exposure: the sessions later on the exposure day dilute it by about 2%).
EFFECT_METRICS = {
    "buy": ("orders_per_user", "revenue_per_user"),
    "aov": ("revenue_per_user",),
    "sessions": ("sessions_per_user",),
}


def expected_lifts(exp: PlantedExperiment) -> dict[str, float]:
    """Expected relative lift per metric of a planted experiment (0 where its effects
    leave the metric alone; an experiment without effects: 0 for every metric)."""
    out = {m: 0.0 for metrics in EFFECT_METRICS.values() for m in metrics}
    if "sessions" in exp.effects:  # more sessions also mean more orders: not exact, left out
        out.pop("orders_per_user")
        out.pop("revenue_per_user")
    for name, mult in exp.effects.items():
        for metric in EFFECT_METRICS[name]:
            if metric in out:
                out[metric] = round((1 + out[metric]) * mult - 1, 9)
    return out


def _expose(
    s: _Session,
    seed: int,
    experiments: Sequence[PlantedExperiment],
    cross_share: float,
    xrng: random.Random,
) -> None:
    """ "Experiment Viewed" for every running experiment the person has not seen yet
    (a share of non-control exposures is lost where the split is broken), and the
    planted cross-variation exposures one session later."""
    person = s.p
    for exp in experiments:
        seen = person.experiments.get(exp.id)
        if seen is None and s.day >= exp.start_day:
            variation = assign_variation(seed, exp, person.user_id)
            lost = variation != exp.variations[0] and xrng.random() < exp.lost_exposure_share
            seen = person.experiments[exp.id] = dict(
                variation=variation, exposure_day=s.day, logged=not lost, cross=False
            )
            if not lost:
                _viewed(s, exp, variation)
            seen["cross_pending"] = not lost and xrng.random() < cross_share
        elif seen is not None and seen.pop("cross_pending", False):
            other = [v for v in exp.variations if v != seen["variation"]]
            _viewed(s, exp, xrng.choice(other))
            seen["cross"] = True


def _viewed(s: _Session, exp: PlantedExperiment, variation: str) -> None:
    props = {"experiment_id": exp.id, "experiment_name": exp.name or exp.id}
    s.emit(
        "track",
        "Experiment Viewed",
        props | {"variation_id": variation, "variation_name": variation.title()},
    )


def simulate_person(
    seed: int,
    idx: int,
    start: date,
    days: int,
    bot_share: float,
    experiments: Sequence[PlantedExperiment] = (),
    cross_share: float = 0.0,
) -> tuple[Person, list[dict[str, Any]]]:
    person, rng = make_person(seed, idx, days, bot_share)
    xrng = random.Random(f"{seed}:{idx}:experiments")
    p = ARCHETYPES.get(person.archetype, ARCHETYPES["browser"])
    msgs: list[dict[str, Any]] = []
    device_sessions = [0] * len(person.devices)
    identified = [False] * len(person.devices)
    end_day = person.churn_day if person.churn_day is not None else days
    bot_days = {rng.randrange(days), rng.randrange(days)} if person.is_bot else set()
    for day in range(person.first_day, end_day):
        level = fade(person.churn_day, day)
        rate = effect_multipliers(person, experiments, day, ("sessions",))["sessions"]
        n = (
            (1 if day in bot_days else 0)
            if person.is_bot
            else _poisson(rng, p["spw"] * rate / 7 * (1 + level) / 2)
        )
        today = p if level == 1.0 else dict(p, events=p["events"] * level, buy=p["buy"] * level)
        for _ in range(n):
            di = rng.randrange(len(person.devices))
            dev = person.devices[di]
            device_sessions[di] += 1
            hour = rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
            begin = datetime(start.year, start.month, start.day, tzinfo=UTC) + timedelta(
                days=day, hours=hour, seconds=rng.randrange(3600)
            )
            s = _Session(person, dev, rng, begin, identified[di], day)
            if person.is_bot:
                for _ in range(rng.randint(300, 800)):
                    s.view(rng.choice(["home", "list", "product", "search"]))
            else:
                _expose(s, seed, experiments, cross_share, xrng)
                m = effect_multipliers(person, experiments, day, ("buy", "aov"))
                now = (
                    today
                    if m == {"buy": 1.0, "aov": 1.0}
                    else dict(today, buy=today["buy"] * m["buy"], aov=today["aov"] * m["aov"])
                )
                _browse(s, rng, now, person, dev, device_sessions[di], di, identified)
            person.sessions += 1
            msgs.extend(s.out)
    person.events = len(msgs)
    if msgs:
        person.last_event_ts = msgs[-1]["timestamp"]
    return person, msgs


def _browse(
    s: _Session,
    rng: random.Random,
    p: dict[str, float],
    person: Person,
    dev: Device,
    nth: int,
    di: int,
    identified: list[bool],
) -> None:
    s.view("home")
    if dev.signin_session == nth and not identified[di]:
        if nth == 1 and person.first_day == s.day and rng.random() < 0.5:
            s.emit("track", "Signed Up", {"method": "email", "plan": "free"})
        if dev.uses_alias:
            s.emit("alias", previous_id=dev.anonymous_id)
        s.emit(
            "identify",
            traits={"email": person.email, "plan": "free", "phone": f"+1555{person.idx:07d}"},
        )
        s.emit("track", "Signed In", {"method": "password"})
        identified[di] = True
        s.identified = True
    steps = max(1, _poisson(rng, p["events"] - 1))
    for _ in range(steps):
        r = rng.random()
        if r < 0.15:
            s.emit(
                "track",
                "Products Searched",
                {"query": rng.choice(CATEGORIES), "results": rng.randrange(80)},
            )
        elif r < 0.35:
            s.emit("track", "Product List Viewed", {"list_id": rng.choice(CATEGORIES)})
            s.view("list")
        elif r < 0.75:
            s.emit("track", "Product Viewed", _product(rng, p))
            s.view("product")
        elif r < 0.85:
            s.emit("track", "Product Added", _product(rng, p) | {"quantity": 1})
        elif r < 0.9:
            s.emit("track", "Cart Viewed", {"cart_id": f"c{person.idx}"})
        else:
            s.view(rng.choice(["home", "search", "list"]))
    if rng.random() < p["buy"]:
        order_id = f"o{person.idx}-{person.orders}"
        value = round(max(5.0, rng.gauss(p["aov"], p["aov"] / 3)), 2)
        s.emit("track", "Product Added", _product(rng, p) | {"quantity": 1})
        s.emit(
            "track", "Checkout Started", {"order_id": order_id, "value": value, "currency": "USD"}
        )
        discount = 0.0
        if rng.random() < p["coupon"]:
            discount = round(value * 0.1, 2)
            s.emit(
                "track",
                "Coupon Applied",
                {"coupon_id": "SAVE10", "order_id": order_id, "discount": discount},
            )
        revenue = round(value - discount, 2)
        s.emit(
            "track",
            "Order Completed",
            {"order_id": order_id, "revenue": revenue, "currency": "USD", "discount": discount},
        )
        person.orders += 1
        person.revenue = round(person.revenue + revenue, 2)


def _product(rng: random.Random, p: dict[str, float]) -> dict[str, Any]:
    return {
        "product_id": f"sku-{rng.randrange(500):04d}",
        "category": rng.choice(CATEGORIES),
        "price": round(max(1.0, rng.gauss(p["aov"] / 2, p["aov"] / 6)), 2),
        "currency": "USD",
    }


def deliver(
    msg: dict[str, Any],
    rng: random.Random,
    faults: FaultConfig,
    person: Person,
) -> list[tuple[datetime, str]]:
    """Arrival time(s) and the serialized line(s) of one message, faults applied."""
    ts = datetime.fromisoformat(msg["timestamp"].replace("Z", "+00:00"))
    received = ts + timedelta(seconds=rng.uniform(0.05, 3.0))

    def hit(name: str) -> bool:
        if rng.random() < getattr(faults, name):
            person.faults[name] = person.faults.get(name, 0) + 1
            return True
        return False

    if hit("late"):
        received = ts + timedelta(days=rng.uniform(1, faults.max_late_days))
    if hit("future_timestamp"):
        msg["timestamp"] = _iso(received + timedelta(hours=rng.uniform(2, 48)))
    msg["sentAt"] = _iso(min(received, ts + timedelta(seconds=rng.uniform(0.01, 2))))
    msg["receivedAt"] = _iso(received)
    if msg["type"] == "track" and hit("undeclared_property"):
        msg.setdefault("properties", {})["experiment_variant"] = rng.choice(["A", "B"])
    if msg["type"] == "track" and hit("unknown_event"):
        msg["event"] = "Wishlist Shared"
    if hit("wrong_type"):
        kind = rng.randrange(3)
        if kind == 0:
            msg["messageId"] = rng.randrange(10**9)
        elif kind == 1:
            msg["timestamp"] = int(ts.timestamp())
        elif "properties" in msg and "price" in msg["properties"]:
            msg["properties"]["price"] = str(msg["properties"]["price"])
        else:
            msg["properties"] = "n/a"
    if hit("missing_field"):
        msg.pop(rng.choice(["messageId", "type", "timestamp"]), None)
    line = json.dumps(msg, separators=(",", ":"), ensure_ascii=False)
    if hit("malformed_json"):
        cut = rng.randrange(1, len(line) - 1)
        line = line[:cut] + rng.choice(["}", "\\", "{{", '"']) + line[cut + 1 :]
    if hit("truncated_line"):
        line = line[: rng.randrange(1, len(line) - 1)]
    out = [(received, line)]
    if hit("duplicate"):
        out.append((received + timedelta(hours=rng.uniform(1, 72)), line))
    return out


def person_truth(person: Person) -> dict[str, Any]:
    d = asdict(person)
    d["devices"] = [asdict(x) for x in person.devices]
    d["faults"] = dict(person.faults)
    return d
