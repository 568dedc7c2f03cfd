"""The event taxonomy: `conf/base/taxonomy/*.yml`, one file per event family."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import types as T

from behavior_lake.config import ConfigError
from behavior_lake.contracts.codes import MessageType, values

PROPERTY_TYPES = ("string", "integer", "number", "boolean", "object", "array")
MESSAGE_TYPES = values(MessageType)
# page/screen messages are named like track events so one taxonomy covers them.
TYPE_EVENT_NAMES = {"page": "Page Viewed", "screen": "Screen Viewed"}
_EVENT_KEYS = {"type", "category", "schema_version", "required", "optional", "description"}
# What silver does with an event whose declared property is missing (required ones) or of
# the wrong type: flag = keep the event, property null, finding in silver.events.dq_issues;
# reject = silver.rejects with the reason. Default flag: only a property the event is
# unusable without (e.g. revenue of Order Completed) is declared `on_missing: reject`.
POLICIES = ("flag", "reject")
_PROPERTY_KEYS = {"type", "on_missing", "on_wrong_type"}


@dataclass(frozen=True)
class EventDef:
    name: str
    family: str
    event_type: str
    category: str
    schema_version: int
    required: dict[str, str] = field(default_factory=dict)
    optional: dict[str, str] = field(default_factory=dict)
    description: str = ""
    # property -> (on_missing, on_wrong_type); absent = ("flag", "flag")
    policies: dict[str, tuple[str, str]] = field(default_factory=dict)

    def policy(self, prop: str) -> tuple[str, str]:
        return self.policies.get(prop, ("flag", "flag"))

    @property
    def snake_name(self) -> str:
        return snake_case(self.name)

    @property
    def properties(self) -> dict[str, str]:
        return {**self.optional, **self.required}


@dataclass(frozen=True)
class Taxonomy:
    events: dict[str, EventDef]

    def get(self, name: str) -> EventDef | None:
        return self.events.get(name)

    def property_rows(self) -> list[tuple[str, str, str, bool]]:
        """(event, property, type, required) for every declared property."""
        return [
            (e.name, prop, typ, prop in e.required)
            for e in self.events.values()
            for prop, typ in sorted(e.properties.items())
        ]

    def properties_frame(self, spark: SparkSession) -> DataFrame:
        schema = T.StructType(
            [
                T.StructField("event", T.StringType(), False),
                T.StructField("property", T.StringType(), False),
                T.StructField("expected_type", T.StringType(), False),
                T.StructField("is_required", T.BooleanType(), False),
            ]
        )
        return spark.createDataFrame(self.property_rows(), schema)

    def events_frame(self, spark: SparkSession) -> DataFrame:
        rows = [
            (e.name, e.event_type, e.category, e.snake_name, e.schema_version)
            for e in self.events.values()
        ]
        return spark.createDataFrame(
            rows,
            "event string, event_type string, category string, event_name string, "
            "schema_version int",
        )


def snake_case(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def load_taxonomy(conf_dir: str | Path) -> Taxonomy:
    folder = Path(conf_dir) / "base" / "taxonomy"
    files = sorted(folder.glob("*.yml"))
    if not files:
        raise ConfigError(f"taxonomy: no event family files in {folder}")
    events: dict[str, EventDef] = {}
    for path in files:
        doc = yaml.safe_load(path.read_text()) or {}
        where = path.name
        unknown = set(doc) - {"family", "events", "description"}
        if unknown:
            raise ConfigError(f"taxonomy {where}: unknown key(s) {sorted(unknown)}")
        family = doc.get("family")
        if not isinstance(family, str):
            raise ConfigError(f"taxonomy {where}: 'family' must be a string")
        for name, spec in (doc.get("events") or {}).items():
            key = f"taxonomy {where}: events.{name}"
            if name in events:
                raise ConfigError(f"{key}: declared twice (also in {events[name].family})")
            events[name] = _event(name, family, spec, key)
    return Taxonomy(events)


def _event(name: str, family: str, spec: object, key: str) -> EventDef:
    if not isinstance(spec, dict):
        raise ConfigError(f"{key}: expected a mapping")
    unknown = set(spec) - _EVENT_KEYS
    if unknown:
        raise ConfigError(f"{key}: unknown key(s) {sorted(unknown)}")
    etype = spec.get("type", "track")
    if etype not in ("track", "page", "screen"):
        raise ConfigError(f"{key}.type: expected track, page or screen, got {etype!r}")
    if etype in TYPE_EVENT_NAMES and name != TYPE_EVENT_NAMES[etype]:
        raise ConfigError(f"{key}: {etype} messages must be named {TYPE_EVENT_NAMES[etype]!r}")
    if not re.fullmatch(r"[A-Z][A-Za-z0-9]*( [A-Z][A-Za-z0-9]*)+", name):
        raise ConfigError(f"{key}: event names follow 'Object Action' in Title Case")
    props: dict[str, dict[str, str]] = {}
    policies: dict[str, tuple[str, str]] = {}
    for part in ("required", "optional"):
        raw = spec.get(part) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{key}.{part}: expected a mapping of property -> type")
        props[part] = {}
        for prop, decl in raw.items():
            pkey = f"{key}.{part}.{prop}"
            if not re.fullmatch(r"[a-z][a-z0-9_]*", str(prop)):
                raise ConfigError(f"{pkey}: property names are snake_case")
            typ, policy = _property(decl, pkey, part == "required")
            props[part][str(prop)] = typ
            if policy != ("flag", "flag"):
                policies[str(prop)] = policy
    version = spec.get("schema_version", 1)
    if not isinstance(version, int):
        raise ConfigError(f"{key}.schema_version: expected an integer")
    category = spec.get("category")
    if not isinstance(category, str):
        raise ConfigError(f"{key}.category: required string")
    return EventDef(
        name,
        family,
        etype,
        category,
        version,
        props["required"],
        props["optional"],
        str(spec.get("description", "")),
        policies,
    )


def _property(decl: object, key: str, required: bool) -> tuple[str, tuple[str, str]]:
    """`type` or `{type, on_missing, on_wrong_type}` -> (type, (on_missing, on_wrong_type))."""
    if isinstance(decl, str):
        decl = {"type": decl}
    if not isinstance(decl, dict):
        raise ConfigError(f"{key}: expected a type or a mapping with 'type'")
    unknown = set(decl) - _PROPERTY_KEYS
    if unknown:
        raise ConfigError(
            f"{key}: unknown key(s) {sorted(unknown)}; expected {sorted(_PROPERTY_KEYS)}"
        )
    typ = decl.get("type")
    if typ not in PROPERTY_TYPES:
        raise ConfigError(f"{key}.type: expected one of {PROPERTY_TYPES}, got {typ!r}")
    policy = []
    for name in ("on_missing", "on_wrong_type"):
        value = decl.get(name, "flag")
        if value not in POLICIES:
            raise ConfigError(f"{key}.{name}: expected one of {POLICIES}, got {value!r}")
        policy.append(value)
    if not required and policy[0] == "reject":
        raise ConfigError(f"{key}.on_missing: only a required property can reject when missing")
    return str(typ), (policy[0], policy[1])


# ----------------------------------------------------------------------------- typing

SPARK_TYPES: dict[str, T.DataType] = {
    "string": T.StringType(),
    "integer": T.LongType(),
    "number": T.DoubleType(),
    "boolean": T.BooleanType(),
    "object": T.StringType(),
    "array": T.StringType(),
}


def property_types(taxonomy: Taxonomy) -> dict[str, str]:
    """One type per declared property name across events (string when they disagree)."""
    out: dict[str, str] = {}
    for e in taxonomy.events.values():
        for name, typ in e.properties.items():
            if name in out and out[name] != typ:
                out[name] = "number" if {out[name], typ} == {"integer", "number"} else "string"
            else:
                out.setdefault(name, typ)
    return dict(sorted(out.items()))


def properties_type(taxonomy: Taxonomy) -> T.StructType:
    return T.StructType(
        [T.StructField(n, SPARK_TYPES[t]) for n, t in property_types(taxonomy).items()]
    )
