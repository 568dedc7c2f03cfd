"""The two privacy keys: strength checks and the development defaults.

`privacy.pseudonym_key` (HMAC of person ids) and `privacy.encryption_key` (AES of raw
PII) decide whether the lake is pseudonymous at all. Outside `--env local` a job refuses
to start without strong keys; in local mode the published development keys are allowed
and the run says so in its first log line.

The keys reach executors as scalar subqueries over a one-row local relation
(`privacy.secret`), never as literals, so no plan, UI page or event log spells them
out. `CONF_REDACTION_REGEX` hides configuration entries and environment variables
named like the keys (e.g. `spark.executorEnv.BEHAVIOR_LAKE_PSEUDONYM_KEY`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import replace

from behavior_lake.config import ConfigError, Settings

DEV_PSEUDONYM_KEY = "dev-pseudonym-key-not-for-production"
DEV_ENCRYPTION_KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
MIN_PSEUDONYM_CHARS = 32
# Spark's default `spark.redaction.regex` plus the names of the two keys.
CONF_REDACTION_REGEX = (
    r"(?i)secret|password|token|access[.]?key|pseudonym[._]?key|encryption[._]?key"
)


def uses_development_keys(settings: Settings) -> bool:
    p = settings.privacy
    return p.pseudonym_key == DEV_PSEUDONYM_KEY or p.encryption_key.lower() == DEV_ENCRYPTION_KEY


def key_problems(settings: Settings) -> list[str]:
    """What makes the configured keys unfit for real data (empty = fit)."""
    p = settings.privacy
    out = []
    if p.pseudonym_key == DEV_PSEUDONYM_KEY:
        out.append("privacy.pseudonym_key is the published development key")
    elif len(p.pseudonym_key) < MIN_PSEUDONYM_CHARS or len(set(p.pseudonym_key)) < 8:
        out.append(
            f"privacy.pseudonym_key: expected at least {MIN_PSEUDONYM_CHARS} characters "
            "of random text (e.g. `openssl rand -hex 32`)"
        )
    enc = p.encryption_key
    if enc.lower() == DEV_ENCRYPTION_KEY:
        out.append("privacy.encryption_key is the published development key")
    elif not re.fullmatch(r"[0-9a-fA-F]+", enc) or len(enc) not in (32, 48, 64):
        out.append(
            "privacy.encryption_key: expected 32, 48 or 64 hex digits (an AES-128/192/256 "
            "key, e.g. `openssl rand -hex 32`)"
        )
    elif len(set(enc.lower())) < 6:
        out.append("privacy.encryption_key: too few distinct digits to be a random key")
    return out


def databricks_secret(ref: str, key: str) -> str:
    """The value of the Databricks secret `scope/name` (dbutils.secrets, available on
    Databricks clusters and serverless compute alike)."""
    scope, _, name = ref.partition("/")
    if not scope or not name or "/" in name:
        raise ConfigError(f"{key}: expected a Databricks secret as scope/key, got {ref!r}")
    if not os.environ.get("DATABRICKS_RUNTIME_VERSION"):
        raise ConfigError(
            f"{key}: the secret {ref!r} can only be read on Databricks; elsewhere set the "
            "key itself (BEHAVIOR_LAKE_PSEUDONYM_KEY / BEHAVIOR_LAKE_ENCRYPTION_KEY)"
        )
    from databricks.sdk.runtime import dbutils  # present on every Databricks runtime

    return dbutils.secrets.get(scope=scope, key=name)


def with_secret_keys(
    settings: Settings, read: Callable[[str, str], str] = databricks_secret
) -> Settings:
    """Fill an empty privacy key from its `*_secret` reference (a key set directly, e.g.
    from the environment, wins)."""
    p = settings.privacy
    changes = {}
    for attr in ("pseudonym_key", "encryption_key"):
        ref = getattr(p, f"{attr}_secret")
        if not getattr(p, attr) and ref:
            changes[attr] = read(ref, f"privacy.{attr}_secret")
    if not changes:
        return settings
    return replace(settings, privacy=replace(p, **changes))


def check_keys(settings: Settings) -> None:
    """Raise ConfigError outside local mode when a key is weak or the development one."""
    if settings.env == "local":
        return
    problems = key_problems(settings)
    if problems:
        raise ConfigError(
            f"--env {settings.env} needs strong privacy keys (BEHAVIOR_LAKE_PSEUDONYM_KEY, "
            "BEHAVIOR_LAKE_ENCRYPTION_KEY): " + "; ".join(problems)
        )
