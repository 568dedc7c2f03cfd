"""The catalog: every table of the lake as one registered `TableSpec`.

Most specs are static (`behavior_lake.contracts`); two depend on configuration and are
built by factories when the Lake opens: `silver.events` (its `properties` struct follows
the taxonomy) and `gold.user_features` (one column per feature definition). Jobs and
library code name tables through the constants of `behavior_lake.contracts`, never as
string literals (a test checks).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType

from pyspark.sql import SparkSession

from behavior_lake.config import Settings
from behavior_lake.contracts.bronze import BRONZE_EVENTS, BRONZE_QUARANTINE
from behavior_lake.contracts.gold import USER_FEATURES
from behavior_lake.contracts.silver import EVENTS, silver_events_spec
from behavior_lake.contracts.tables import TABLES
from behavior_lake.contracts.taxonomy import Taxonomy, load_taxonomy
from behavior_lake.lake import Lake, choose_engine, make_lake
from behavior_lake.lake.base import TableSpec

log = logging.getLogger(__name__)

Factory = Callable[[Settings, Taxonomy], TableSpec]


def _user_features(settings: Settings, taxonomy: Taxonomy) -> TableSpec:
    from behavior_lake.gold.feature_defs import categories, feature_defs, user_features_spec

    return user_features_spec(feature_defs(settings.gold.features, categories(taxonomy)))


FACTORIES: Mapping[str, Factory] = MappingProxyType(
    {
        EVENTS: lambda _settings, taxonomy: silver_events_spec(taxonomy),
        USER_FEATURES: _user_features,
    }
)


def table_names() -> frozenset[str]:
    """Every table name the catalog knows, static and configuration-dependent."""
    return frozenset(TABLES) | frozenset(FACTORIES)


def subject_tables() -> tuple[str, ...]:
    """Tables that hold rows about a person: raw lines (bronze) and every table with a
    person id or a hashed anonymous id (erasure and subject access reach all of them)."""
    out = [BRONZE_EVENTS.name, BRONZE_QUARANTINE.name]
    out += [
        name
        for name, spec in TABLES.items()
        if {"person_id", "anonymous_id_hash"} & set(spec.schema.fieldNames())
    ]
    out += list(FACTORIES)  # silver.events and gold.user_features: both keyed by person
    return tuple(sorted(set(out)))


def resolve(settings: Settings, taxonomy: Taxonomy | None = None) -> Mapping[str, TableSpec]:
    """Every spec, the factories resolved for these settings (read-only)."""
    tax = taxonomy if taxonomy is not None else load_taxonomy(settings.conf_dir)
    specs = dict(TABLES)
    for name, factory in FACTORIES.items():
        spec = factory(settings, tax)
        if spec.name != name:
            raise ValueError(f"catalog factory for {name} built a spec named {spec.name}")
        specs[name] = spec
    return MappingProxyType(specs)


def open_lake(spark: SparkSession, settings: Settings, taxonomy: Taxonomy | None = None) -> Lake:
    """The Lake for these settings, opened over the resolved catalog."""
    engine = choose_engine(spark, settings.lake.engine)
    why = ""
    if engine == "delta-rs" and settings.lake.engine == "auto":
        why = "; the Delta JVM classes are not loadable in this session"
    log.info(
        "lake engine: %s (lake.engine=%s%s), root %s",
        engine,
        settings.lake.engine,
        why,
        settings.lake.root,
    )
    return make_lake(
        spark,
        settings.lake.root,
        engine,
        resolve(settings, taxonomy),
        deletion_vectors=settings.lake.deletion_vectors,
        catalog=settings.lake.catalog,
        schema_prefix=settings.lake.schema_prefix,
    )
