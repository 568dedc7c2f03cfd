from __future__ import annotations

import pytest

from behavior_lake.config import ConfigError, load_settings
from tests.conftest import CONF


def test_local_defaults_load() -> None:
    s = load_settings("local", conf_dir=CONF)
    assert s.env == "local"
    assert s.lake.root == "lakehouse"
    assert s.lake.engine == "auto"
    assert s.spark.master == "local[*]"
    assert s.privacy.pseudonym_key  # local has a documented development key


def test_override_is_typed() -> None:
    s = load_settings(
        "local", ["spark.shuffle_partitions=7", "bronze.sampling.Page Viewed=0.5"], conf_dir=CONF
    )
    assert s.spark.shuffle_partitions == 7
    assert s.bronze.sampling == {"Page Viewed": 0.5}


def test_unknown_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"lake\.rooot"):
        load_settings("local", ["lake.rooot=/x"], conf_dir=CONF)


def test_unknown_section_is_named() -> None:
    with pytest.raises(ConfigError, match="sparkk"):
        load_settings("local", ["sparkk.master=x"], conf_dir=CONF)


def test_wrong_type_is_named() -> None:
    with pytest.raises(ConfigError, match=r"spark\.shuffle_partitions: expected an integer"):
        load_settings("local", ["spark.shuffle_partitions=many"], conf_dir=CONF)


def test_wrong_choice_is_named() -> None:
    with pytest.raises(ConfigError, match=r"lake\.engine: expected one of"):
        load_settings("local", ["lake.engine=iceberg"], conf_dir=CONF)


def test_bad_override_syntax() -> None:
    with pytest.raises(ConfigError, match=r"dotted\.key=value"):
        load_settings("local", ["lake.root"], conf_dir=CONF)


def test_missing_env_secret_names_key_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BEHAVIOR_LAKE_PSEUDONYM_KEY", raising=False)
    monkeypatch.setenv("BEHAVIOR_LAKE_ROOT", "/data/lake")
    monkeypatch.setenv("BEHAVIOR_LAKE_LANDING", "/data/landing")
    with pytest.raises(
        ConfigError,
        match=r"privacy\.pseudonym_key: environment variable "
        r"BEHAVIOR_LAKE_PSEUDONYM_KEY is not set",
    ):
        load_settings("cluster", conf_dir=CONF)


def test_env_secret_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "BEHAVIOR_LAKE_PSEUDONYM_KEY": STRONG_PK,
        "BEHAVIOR_LAKE_ENCRYPTION_KEY": STRONG_EK,
        "BEHAVIOR_LAKE_ROOT": "/data/lake",
        "BEHAVIOR_LAKE_LANDING": "/data/landing",
    }.items():
        monkeypatch.setenv(name, value)
    s = load_settings("cluster", conf_dir=CONF)
    assert s.privacy.pseudonym_key == STRONG_PK
    assert s.lake.root == "/data/lake"
    assert s.spark.master is None


def test_unknown_env_rejected() -> None:
    with pytest.raises(ConfigError, match="--env"):
        load_settings("staging", conf_dir=CONF)


def test_missing_required_value(tmp_path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "x.yml").write_text("lake: {engine: auto}\n")
    with pytest.raises(ConfigError, match=r"lake\.root: required value is missing"):
        load_settings("local", conf_dir=tmp_path)


def test_large_cache_level_default_and_choice(spark) -> None:
    from pyspark import StorageLevel

    from behavior_lake.spark import persist_large

    assert load_settings("local", conf_dir=CONF).spark.large_cache_level == "DISK_ONLY"
    df = spark.range(3)
    for level in ("DISK_ONLY", "MEMORY_AND_DISK"):
        s = load_settings("local", [f"spark.large_cache_level={level}"], conf_dir=CONF)
        cached = persist_large(df.select("id"), s)
        try:
            assert cached.storageLevel == getattr(StorageLevel, level)
            assert cached.count() == 3
        finally:
            cached.unpersist()
    with pytest.raises(ConfigError, match=r"spark\.large_cache_level: expected one of"):
        load_settings("local", ["spark.large_cache_level=OFF_HEAP"], conf_dir=CONF)


def test_ml_parallelism_default_and_bounds() -> None:
    assert load_settings("local", conf_dir=CONF).spark.ml_parallelism == 4
    assert (
        load_settings("local", ["spark.ml_parallelism=1"], conf_dir=CONF).spark.ml_parallelism == 1
    )
    with pytest.raises(ConfigError, match=r"spark\.ml_parallelism: expected a value >= 1"):
        load_settings("local", ["spark.ml_parallelism=0"], conf_dir=CONF)


STRONG_PK = "7f3a9c1e5b8d2f4a6c0e9b7d3f1a5c8e"
STRONG_EK = "9e4b7c2a1f6d8e3b5a0c7f9d2e4b6a8c1d3f5e7a9b0c2d4e6f8a1b3c5d7e9f0a"


@pytest.mark.parametrize(
    ("pk", "ek", "message"),
    [
        ("", STRONG_EK, "pseudonym_key: expected at least 32"),
        ("x", STRONG_EK, "pseudonym_key: expected at least 32"),
        ("dev-pseudonym-key-not-for-production", STRONG_EK, "published development key"),
        (STRONG_PK, "zz" * 32, "encryption_key: expected 32, 48 or 64 hex"),
        (STRONG_PK, "00" * 32, "encryption_key: too few distinct digits"),
        (STRONG_PK, "abc", "encryption_key: expected 32, 48 or 64 hex"),
    ],
)
def test_cluster_refuses_weak_keys(
    monkeypatch: pytest.MonkeyPatch, pk: str, ek: str, message: str
) -> None:
    monkeypatch.setenv("BEHAVIOR_LAKE_ROOT", "/data/lake")
    monkeypatch.setenv("BEHAVIOR_LAKE_LANDING", "/data/landing")
    monkeypatch.setenv("BEHAVIOR_LAKE_PSEUDONYM_KEY", pk)
    monkeypatch.setenv("BEHAVIOR_LAKE_ENCRYPTION_KEY", ek)
    with pytest.raises(ConfigError, match=message):
        load_settings("cluster", conf_dir=CONF)


def test_local_allows_and_flags_development_keys() -> None:
    from behavior_lake.privacy_keys import uses_development_keys

    s = load_settings("local", conf_dir=CONF)
    assert uses_development_keys(s)
    strong = load_settings(
        "local",
        [f"privacy.pseudonym_key={STRONG_PK}", f"privacy.encryption_key={STRONG_EK}"],
        conf_dir=CONF,
    )
    assert not uses_development_keys(strong)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("spark.shuffle_partitions=0", r"spark\.shuffle_partitions: expected a value >= 1, got 0"),
        ("experiments.srm_alpha=0", r"experiments\.srm_alpha: expected a value from 1e-09 to 0\.5"),
        ("experiments.window_days=0", r"experiments\.window_days: expected a value from 1 to 365"),
        (
            "experiments.metrics.bad={kind: ratio, measure: events}",
            r"experiments\.metrics\.bad\.denominator: expected one of \['events', 'revenue', "
            r"'sessions', 'active_days'\] for a ratio",
        ),
        (
            "experiments.metrics.bad={kind: mean, measure: sessions, from_day: 14}",
            r"experiments\.metrics\.bad\.to_day: expected more than from_day \(14\), got 14",
        ),
        (
            "experiments.metrics.bad={kind: median, measure: events}",
            r"experiments\.metrics\.bad\.kind: expected one of \['proportion', 'mean', 'ratio'\]",
        ),
        (
            "generator.experiments=[{id: a, effects: {clicks: 2}}]",
            r"generator\.experiments\[0\]\.effects\.clicks: expected one of \['sessions', 'buy', 'aov'\]",
        ),
        (
            "generator.experiments=[{id: a, lost_exposure_share: 1}]",
            r"generator\.experiments\[0\]\.lost_exposure_share: expected a value from 0 to 0\.9",
        ),
        (
            "pipeline.tasks.bronze_ingest.retries=-1",
            r"pipeline\.tasks\.bronze_ingest\.retries: expected a value >= 0, got -1",
        ),
        (
            "pipeline.tasks.gold_kpis.sla.max_duration_minutes=-5",
            r"pipeline\.tasks\.gold_kpis\.sla\.max_duration_minutes: expected a value from 1 to",
        ),
        (
            "pipeline.tasks.gold_kpis.retry_delay_seconds=-1",
            r"pipeline\.tasks\.gold_kpis\.retry_delay_seconds: expected a value from 0 to 3600",
        ),
        (
            "pipeline.tasks.gold_kpis.run_if=sometimes",
            r"pipeline\.tasks\.gold_kpis\.run_if: expected one of \['all_success', 'all_done'\]",
        ),
    ],
)
def test_out_of_range_values_name_the_key_and_the_range(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings("local", [override], conf_dir=CONF)
    # positive control: a value in range loads
    key = override.split("=")[0]
    good = {
        "spark.shuffle_partitions": "2",
        "pipeline.tasks.gold_kpis.run_if": "all_done",
        "experiments.srm_alpha": "0.001",
        "experiments.metrics.bad": "{kind: mean, measure: sessions, from_day: 7}",
        "generator.experiments": "[{id: a, effects: {buy: 2}, lost_exposure_share: 0.5}]",
    }
    value = good.get(key, "1")
    assert load_settings("local", [f"{key}={value}"], conf_dir=CONF)


def test_databricks_keys_come_from_the_secret_scope_without_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Serverless compute has no cluster environment: the keys are read from the secret
    scope (dbutils.secrets on Databricks; here a stand-in reader, the real one needs a
    Databricks runtime). A key set in the environment wins; off Databricks the error
    names the key and what to set."""
    from dataclasses import replace as dc_replace

    from behavior_lake.privacy_keys import with_secret_keys

    for name in ("BEHAVIOR_LAKE_PSEUDONYM_KEY", "BEHAVIOR_LAKE_ENCRYPTION_KEY",
                 "DATABRICKS_RUNTIME_VERSION"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BEHAVIOR_LAKE_ROOT", "/Volumes/main/behavior_ops/lake")
    monkeypatch.setenv("BEHAVIOR_LAKE_LANDING", "/Volumes/main/behavior_ops/landing")
    with pytest.raises(ConfigError, match=r"privacy\.pseudonym_key_secret: the secret "
                       r"'behavior-lake/pseudonym-key' can only be read on Databricks"):  # fmt: skip
        load_settings("databricks", conf_dir=CONF)
    monkeypatch.setenv("BEHAVIOR_LAKE_PSEUDONYM_KEY", STRONG_PK)
    monkeypatch.setenv("BEHAVIOR_LAKE_ENCRYPTION_KEY", STRONG_EK)
    s = load_settings("databricks", conf_dir=CONF)  # the environment wins
    assert s.privacy.pseudonym_key == STRONG_PK
    assert s.privacy.pseudonym_key_secret == "behavior-lake/pseudonym-key"
    secrets = {
        "behavior-lake/pseudonym-key": "p" * 8 + STRONG_PK,
        "behavior-lake/encryption-key": STRONG_EK,
    }
    read = []
    empty = dc_replace(s, privacy=dc_replace(s.privacy, pseudonym_key="", encryption_key=""))
    got = with_secret_keys(empty, lambda ref, key: read.append(key) or secrets[ref])
    assert (
        got.privacy.pseudonym_key == "p" * 8 + STRONG_PK and got.privacy.encryption_key == STRONG_EK
    )
    assert read == ["privacy.pseudonym_key_secret", "privacy.encryption_key_secret"]
    bad = dc_replace(empty, privacy=dc_replace(empty.privacy, pseudonym_key_secret="no-slash"))
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "17.3")
    with pytest.raises(ConfigError, match=r"expected a Databricks secret as scope/key"):
        with_secret_keys(bad)


def test_campaign_target_metric_must_be_an_experiment_metric() -> None:
    rules = "[{id: r, kind: event, event: Order Completed, campaign: c, channel: email, target_metric: clicks}]"
    with pytest.raises(
        ConfigError, match=r"activation\.rules\[0\]\.target_metric: expected one of "
    ):
        load_settings("local", [f"activation.rules={rules}"])
    ok = rules.replace("clicks", "conversion")
    assert (
        load_settings("local", [f"activation.rules={ok}"]).activation.rules[0].target_metric
        == "conversion"
    )
