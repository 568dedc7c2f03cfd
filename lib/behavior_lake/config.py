"""Typed settings: `conf/base/*.yml`, then `conf/<env>/*.yml`, then `--conf key=value`.

Every section is a frozen dataclass. Loading is strict: an unknown key, a value of the
wrong type, or a missing required value fails at start-up with the dotted key in the
message. String values may reference environment variables as `${ENV:NAME}` or
`${ENV:NAME:-default}` (secrets are never written into the repository).
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

ENVIRONMENTS = ("local", "cluster", "databricks")
_ENV_REF = re.compile(r"\$\{ENV:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(ValueError):
    """A configuration problem; the message names the dotted key."""


# ---------------------------------------------------------------------------- ranges


def _at_least(key: str, value: float, low: float) -> None:
    if value < low:
        raise ConfigError(f"{key}: expected a value >= {low}, got {value}")


def _between(key: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{key}: expected a value from {low} to {high}, got {value}")


def _check_items(key: str, items: list[Any]) -> None:
    """Each item's own check (`item.check(dotted key)`), and ids used once."""
    seen: set[str] = set()
    for i, item in enumerate(items):
        item.check(f"{key}[{i}]")
        if item.id in seen:
            raise ConfigError(f"{key}[{i}].id: {item.id!r} is used twice")
        seen.add(item.id)


def _iso_date(key: str, value: str) -> None:
    from datetime import date

    try:
        date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{key}: expected a date YYYY-MM-DD, got {value!r}") from None


# ---------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class SparkSettings:
    master: str | None = "local[*]"  # null on clusters: getOrCreate() without a master
    app_name: str = "behavior-lake"
    # spark.sql.shuffle.partitions; locally also the adaptive-coalescing floor and the
    # number of person ranges a partitioned write starts from
    shuffle_partitions: int = 4
    # local mode only (a cluster sizes its own driver)
    driver_memory: str = "4g"
    # the Spark UI (off locally: tests start many sessions)
    ui_enabled: bool = False
    # Maven coordinates of the Delta JVM package, for `submit.sh --packages` where a
    # user prefers Maven to the locked jar cache (infra/jars/jars.lock). Local sessions
    # always take the cached jars (`make jars`) and never download at run time.
    delta_package: str = "io.delta:delta-spark_4.2_2.13:4.4.0"
    # Training sets up to this many rows are fitted from one cached partition: on small
    # data Spark ML's cost is per job and per task (one job per solver iteration), not
    # per row. 0 = keep the input's partitioning.
    ml_single_partition_max_rows: int = 500_000
    # Independent model fits of one training job (segments: every k, then the bootstrap
    # refits; churn: every classifier kind and the survival model) run from this many
    # driver threads at once. On small data a fit is mostly per-job scheduling and
    # driver round trips, which concurrent fits overlap; results do not depend on it.
    # 1 = one fit after the other.
    ml_parallelism: int = 4
    # Where the per-run caches that grow with the data (bronze: one batch of classified
    # lines; silver: the conformed and sessionized rows of the affected persons; gold:
    # the silver.events columns it reads) are kept. DISK_ONLY
    # bounds the heap they need to one column batch per task, whatever the batch size;
    # MEMORY_AND_DISK keeps them in storage memory when it fits (clusters with
    # plenty of executor memory).
    large_cache_level: Literal["DISK_ONLY", "MEMORY_AND_DISK"] = "DISK_ONLY"
    # any other Spark settings, as given
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _at_least("spark.ml_parallelism", self.ml_parallelism, 1)
        _at_least("spark.shuffle_partitions", self.shuffle_partitions, 1)
        _at_least("spark.ml_single_partition_max_rows", self.ml_single_partition_max_rows, 0)


@dataclass(frozen=True)
class LakeSettings:
    # where tables live: a path or URI (s3a://, dbfs:/); tables at <root>/<layer>/<table>
    root: str
    # auto: delta-spark when its JVM classes load in the session, else delta-rs
    engine: Literal["auto", "delta-rs", "delta-spark"] = "auto"
    # Files removed from a table stay readable (time travel) this long before vacuum.
    vacuum_retention_hours: float = 168.0
    # delta-spark only: tables created with deletion vectors (deletes and merges mark rows
    # instead of rewriting files; erasure purges them). Off by default: delta-rs 1.6
    # cannot read such a table.
    deletion_vectors: bool = False
    # Tables by name: <catalog>.<schema_prefix><layer>.<table> (Unity Catalog on
    # Databricks; `spark_catalog` locally), managed by the catalog; null = by path under
    # lake.root. delta-spark only.
    catalog: str | None = None
    # prefix of the layer schemas (bronze, silver, gold, ops), e.g. `behavior_`
    schema_prefix: str = ""

    def __post_init__(self) -> None:
        _at_least("lake.vacuum_retention_hours", self.vacuum_retention_hours, 0)
        if not self.root.strip():
            raise ConfigError("lake.root: expected a path or URI, got an empty string")
        if self.catalog is not None and self.engine == "delta-rs":
            raise ConfigError(
                "lake.catalog: tables by name need the delta-spark engine; expected "
                "lake.engine: delta-spark or auto, or lake.catalog: null"
            )
        for key, value in (
            ("lake.catalog", self.catalog or "x"),
            ("lake.schema_prefix", self.schema_prefix or "x"),
        ):
            if not re.fullmatch(r"[A-Za-z0-9_]+", value):
                raise ConfigError(f"{key}: expected letters, digits and _ only, got {value!r}")


@dataclass(frozen=True)
class LandingSettings:
    # the landing folder: <date>/<HH>/*.jsonl[.gz] by arrival hour (docs/landing.md)
    root: str
    # generator truth for tests (never read by the pipeline)
    truth_root: str = "truth"


@dataclass(frozen=True)
class LoggingSettings:
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # json lines carry run_id and job
    format: Literal["text", "json"] = "text"


@dataclass(frozen=True)
class PrivacySettings:
    # HMAC key for person_id pseudonyms (silver); AES key (hex, 16/24/32 bytes) for
    # field-level encryption of raw PII kept in bronze.
    pseudonym_key: str
    # AES key, hex (16/24/32 bytes), for the PII fields bronze keeps encrypted
    encryption_key: str
    # What bronze does with the PII fields below: encrypt them (AES-GCM) or drop them.
    pii_mode: Literal["encrypt", "drop"] = "encrypt"
    # dotted paths in a message treated as PII
    pii_fields: list[str] = field(
        default_factory=lambda: ["context.ip", "traits.email", "traits.phone"]
    )
    # Databricks secrets ("scope/key") read when the key above is empty: serverless jobs
    # have no cluster environment variables to carry the keys
    pseudonym_key_secret: str = ""
    encryption_key_secret: str = ""


@dataclass(frozen=True)
class BronzeSettings:
    # 0 = every new file in one batch.
    max_files_per_batch: int = 0
    # Keep rate (0..1] per event name; absent names are kept whole.
    sampling: dict[str, float] = field(default_factory=dict)
    # longer lines are quarantined as line_too_long
    max_line_chars: int = 1_000_000
    # Plausible event times: from this date up to the line's arrival + max_future_hours
    # (docs/arrival-time.md). Earlier or later timestamps are quarantined
    # (invalid_timestamp); defaulted 1970 device clocks fall below the default.
    min_event_date: str = "1990-01-01"
    max_future_hours: float = 72.0
    # A .gz file whose uncompressed size (gzip trailer) exceeds this many times its
    # compressed size is quarantined whole (decompression_limit) without being read.
    max_decompression_ratio: float = 200.0
    # A file whose ingestion failed this many times (the process died or the batch
    # raised) is quarantined whole (poison_file); failed batches are retried bisected,
    # each file alone at its last attempt (at least 2, so one crash quarantines nothing).
    max_file_attempts: int = 3

    def __post_init__(self) -> None:
        _at_least("bronze.max_files_per_batch", self.max_files_per_batch, 0)
        _at_least("bronze.max_line_chars", self.max_line_chars, 100)
        _at_least("bronze.max_future_hours", self.max_future_hours, 0)
        _at_least("bronze.max_decompression_ratio", self.max_decompression_ratio, 2)
        _between("bronze.max_file_attempts", self.max_file_attempts, 2, 100)
        _iso_date("bronze.min_event_date", self.min_event_date)
        if not "1970-01-02" <= self.min_event_date <= "2100-01-01":
            raise ConfigError(
                "bronze.min_event_date: expected a date from 1970-01-02 to 2100-01-01 "
                f"(1970-01-01 is the defaulted clock of broken devices), got {self.min_event_date}"
            )
        for name, rate in self.sampling.items():
            if not 0 < rate <= 1:
                raise ConfigError(
                    f"bronze.sampling.{name}: expected a keep rate in (0, 1], got {rate}"
                )


@dataclass(frozen=True)
class BotSettings:
    # user agents rejected as bot_user_agent (case-insensitive regex)
    user_agent_pattern: str = (
        r"(?i)(bot|crawler|spider|scrapy|python-requests|curl/|wget|headless|phantomjs)"
    )
    # Events of a person in one clock hour above this are a runaway session.
    max_events_per_hour: int = 300

    def __post_init__(self) -> None:
        _at_least("silver.bots.max_events_per_hour", self.max_events_per_hour, 1)


@dataclass(frozen=True)
class SilverSettings:
    # Later copies of a messageId within this many days of the first are duplicates;
    # copies arriving even later are rejected (duplicate_beyond_lookback).
    dedup_lookback_days: int = 7
    # Events received more than this after their timestamp are rejected (too_late).
    late_allowed_days: int = 3
    # event times up to this far after arrival are accepted as they are
    allowed_clock_skew_minutes: int = 10
    # Timestamp later than receivedAt + skew: correct it to receivedAt, or reject.
    future_timestamp_policy: Literal["correct", "reject"] = "correct"
    # cap on anonymous ids merged into one person (runaway devices)
    max_ids_per_person: int = 50
    # Analytics consent of a person with no consent signal yet.
    consent_when_unknown: Literal["deny", "grant"] = "deny"
    # context fields silver keeps (data minimization: no ip, user agent or raw ids).
    kept_context_fields: list[str] = field(
        default_factory=lambda: ["locale", "library.name", "device.type", "os.name"]
    )
    # inactivity that ends a session
    session_timeout_minutes: int = 30
    # longer sessions are cut into slices (is_split)
    max_session_hours: int = 24
    # a session at least this long is engaged
    engaged_min_seconds: int = 10
    bots: BotSettings = field(default_factory=BotSettings)

    def __post_init__(self) -> None:
        _at_least("silver.dedup_lookback_days", self.dedup_lookback_days, 0)
        _at_least("silver.late_allowed_days", self.late_allowed_days, 0)
        _at_least("silver.allowed_clock_skew_minutes", self.allowed_clock_skew_minutes, 0)
        _at_least("silver.max_ids_per_person", self.max_ids_per_person, 1)
        _between("silver.session_timeout_minutes", self.session_timeout_minutes, 1, 24 * 60)
        _between("silver.max_session_hours", self.max_session_hours, 1, 24 * 7)
        _at_least("silver.engaged_min_seconds", self.engaged_min_seconds, 0)


@dataclass(frozen=True)
class FaultRates:
    malformed_json: float = 0.002
    truncated_line: float = 0.002
    missing_field: float = 0.002
    wrong_type: float = 0.002
    unknown_event: float = 0.002
    duplicate: float = 0.01
    late: float = 0.01
    future_timestamp: float = 0.002
    undeclared_property: float = 0.005


PLANTED_EFFECTS = ("sessions", "buy", "aov")


@dataclass(frozen=True)
class PlantedExperiment:
    """An experiment the generator runs (truth in <truth_root>/experiments/)."""

    id: str
    name: str = ""
    # first day (from generator.start_date) a person can be exposed
    start_day: int = 14
    variations: list[str] = field(default_factory=lambda: ["control", "treatment"])
    # planned share of each variation (same order; empty = equal)
    shares: list[float] = field(default_factory=list)
    # multipliers in the non-control variations, from the day after exposure:
    # sessions (session rate), buy (purchase probability per session), aov (order value)
    effects: dict[str, float] = field(default_factory=dict)
    # share of non-control exposures never logged (a broken split: sample-ratio mismatch)
    lost_exposure_share: float = 0.0

    def check(self, key: str) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,62}", self.id):
            raise ConfigError(f"{key}.id: expected snake_case (a-z, 0-9, _), got {self.id!r}")
        _at_least(f"{key}.start_day", self.start_day, 0)
        if len(self.variations) < 2 or len(set(self.variations)) != len(self.variations):
            raise ConfigError(
                f"{key}.variations: expected 2 or more distinct ids, got {self.variations}"
            )
        if self.shares and (len(self.shares) != len(self.variations) or min(self.shares) <= 0):
            raise ConfigError(
                f"{key}.shares: expected {len(self.variations)} positive numbers, got {self.shares}"
            )
        for name, value in self.effects.items():
            if name not in PLANTED_EFFECTS:
                raise ConfigError(f"{key}.effects.{name}: expected one of {list(PLANTED_EFFECTS)}")
            _between(f"{key}.effects.{name}", value, 0.1, 10)
        _between(f"{key}.lost_exposure_share", self.lost_exposure_share, 0, 0.9)


@dataclass(frozen=True)
class GeneratorSettings:
    # persons simulated
    users: int = 600
    # days of activity from start_date
    days: int = 42
    start_date: str = "2026-01-05"
    seed: int = 42
    # Spark partitions the generator writes from
    partitions: int = 4
    # share of landing files written gzip-compressed
    gzip_share: float = 0.5
    # share of simulated persons that behave like bots
    bot_share: float = 0.01
    # late events arrive up to this many days after they happen
    max_late_days: int = 5
    # rates of planted faults per line (tests check each is caught)
    faults: FaultRates = field(default_factory=FaultRates)
    # A/B tests with known effects ("Experiment Viewed" events; docs/experiments.md)
    experiments: list[PlantedExperiment] = field(default_factory=list)
    # share of exposed persons who are also shown another variation (excluded by gold)
    cross_variation_share: float = 0.0

    def __post_init__(self) -> None:
        _between("generator.cross_variation_share", self.cross_variation_share, 0, 0.5)
        _check_items("generator.experiments", self.experiments)


@dataclass(frozen=True)
class FeatureSettings:
    # windows (days before as_of_date) of the count and sum features
    windows_days: list[int] = field(default_factory=lambda: [7, 30, 90])
    # trend ratio: the last `trend_recent_days` against the `trend_base_days` before them
    trend_recent_days: int = 7
    trend_base_days: int = 21
    engagement_half_life_days: float = 14.0
    # weekly series; also the distance to the "previous snapshot" of the lag features
    snapshot_interval_days: int = 7
    # platforms with a share feature (others: platform_share_other)
    platforms: list[str] = field(default_factory=lambda: ["web", "ios", "android"])
    # imputed recency when a person never did the thing
    recency_cap_days: float = 365.0
    # click-path n-gram slots (path_NN features)
    path_vocabulary_size: int = 20
    # n-gram lengths the vocabulary learns from
    path_ngram_sizes: list[int] = field(default_factory=lambda: [2, 3])
    # days before the first snapshot the vocabulary is learned on
    path_training_days: int = 28
    path_min_person_share: float = 0.02
    path_max_person_share: float = 0.95
    # feature PSI between snapshots flagged in ops.feature_drift
    drift_psi_threshold: float = 0.2
    # null-rate increase flagged in ops.feature_drift
    drift_null_rate_threshold: float = 0.1
    # quantile bins of the PSI
    drift_bins: int = 10
    # owner written into gold.feature_catalog
    owner: str = "behavior-lake data team"

    def __post_init__(self) -> None:
        if not self.windows_days or min(self.windows_days) < 1:
            raise ConfigError(
                f"gold.features.windows_days: expected day counts >= 1, got {self.windows_days}"
            )
        _at_least("gold.features.trend_recent_days", self.trend_recent_days, 1)
        _at_least("gold.features.trend_base_days", self.trend_base_days, 1)
        _at_least("gold.features.snapshot_interval_days", self.snapshot_interval_days, 1)
        _at_least("gold.features.engagement_half_life_days", self.engagement_half_life_days, 0.1)
        _at_least("gold.features.drift_bins", self.drift_bins, 2)


@dataclass(frozen=True)
class FunnelSettings:
    steps: list[str]
    window_hours: float = 24.0


@dataclass(frozen=True)
class CohortSettings:
    # weeks followed after the cohort week
    weeks: int = 12
    # extra cohorts: name -> event_name whose first occurrence defines the cohort week
    triggers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PathSettings:
    # frequent session paths kept in gold.paths
    top_n: int = 50
    # steps per path (longer paths are cut)
    max_steps: int = 5
    # consecutive repeats of one event count once
    collapse_repeats: bool = True


@dataclass(frozen=True)
class GoldSettings:
    features: FeatureSettings = field(default_factory=FeatureSettings)
    cohorts: CohortSettings = field(default_factory=CohortSettings)
    # funnel name -> steps (snake_case events) and window_hours
    funnels: dict[str, FunnelSettings] = field(default_factory=dict)
    paths: PathSettings = field(default_factory=PathSettings)


@dataclass(frozen=True)
class MlflowSettings:
    # local: a sqlite store and an artifact folder under mlruns/ (relative to the cwd)
    tracking_uri: str = "sqlite:///mlruns/mlflow.db"
    # where run artifacts and models go
    artifact_root: str = "mlruns/artifacts"
    registry_uri: str | None = None  # default: the tracking URI
    segments_experiment: str = "behavior-segments"
    churn_experiment: str = "behavior-churn"


@dataclass(frozen=True)
class SegmentGate:
    # the champion gate: silhouette at least this
    min_silhouette: float = 0.15
    # the champion gate: stability ARI at least this
    min_stability_ari: float = 0.5
    # promotion also needs this agreement (ARI) with the current champion's assignment
    # of the same snapshot (0 = off: a retrain may redraw the segments)
    min_champion_ari: float = 0.5

    def __post_init__(self) -> None:
        _between("segments.gate.min_champion_ari", self.min_champion_ari, -1, 1)


@dataclass(frozen=True)
class SegmentSettings:
    model_name: str = "behavior_segments"
    # Spark ML clustering
    algorithm: Literal["kmeans", "bisecting_kmeans", "gaussian_mixture"] = "kmeans"
    # smallest k tried (>= 2)
    k_min: int = 3
    # largest k tried
    k_max: int = 8
    # k whose smallest segment is smaller are not chosen
    min_segment_share: float = 0.02
    max_iter: int = 30
    seed: int = 42
    # each feature is clipped to its [q, 1 - q] quantiles of the training data (0 = off),
    # so a handful of extreme persons cannot claim a segment of their own
    winsorize_quantile: float = 0.01
    # gold.user_features columns the model clusters on
    features: list[str] = field(
        default_factory=lambda: [
            "events_30d",
            "sessions_30d",
            "active_days_30d",
            "orders_30d",
            "revenue_30d",
            "recency_days_event",
            "tenure_days",
            "avg_session_duration_s_30d",
            "bounce_rate_30d",
            "engagement_score",
            "events_trend_7_21",
            "product_events_30d",
            "cart_events_30d",
            "checkout_events_30d",
        ]
    )
    # heavy-tailed counts: log1p before scaling
    log_features: list[str] = field(
        default_factory=lambda: [
            "events_30d",
            "sessions_30d",
            "orders_30d",
            "revenue_30d",
            "engagement_score",
            "product_events_30d",
            "cart_events_30d",
            "checkout_events_30d",
            "avg_session_duration_s_30d",
        ]
    )
    # refits on bootstrap samples for the stability ARI
    bootstrap_rounds: int = 3
    # share of persons per bootstrap sample
    bootstrap_fraction: float = 0.8
    gate: SegmentGate = field(default_factory=SegmentGate)
    # derived segment name -> the name to publish instead
    names: dict[str, str] = field(default_factory=dict)
    # segment-share PSI against training that recommends retraining
    drift_psi_threshold: float = 0.2
    # a retrained segment keeps the champion's name while its centroid moved less than
    # this (RMS of the z-score differences); beyond it, it is renamed and logged
    rename_shift: float = 0.5

    def __post_init__(self) -> None:
        _at_least("segments.rename_shift", self.rename_shift, 0)
        _at_least("segments.k_min", self.k_min, 2)
        _at_least("segments.k_max", self.k_max, self.k_min)
        _between("segments.min_segment_share", self.min_segment_share, 0, 0.5)
        _between("segments.winsorize_quantile", self.winsorize_quantile, 0, 0.25)
        _at_least("segments.max_iter", self.max_iter, 1)
        _at_least("segments.bootstrap_rounds", self.bootstrap_rounds, 1)
        _between("segments.bootstrap_fraction", self.bootstrap_fraction, 0.1, 0.99)


@dataclass(frozen=True)
class ChurnGate:
    # A first champion must beat both naive baselines on measures that do not depend on
    # the base rate: ROC AUC (the base-rate baseline scores 0.5), ROC AUC over the
    # recency-only score, and PR AUC skill = (PR AUC - base rate) / (1 - base rate),
    # the share of the possible improvement over the base rate (0 = none, 1 = perfect).
    min_roc_auc: float = 0.6
    # first champion: ROC AUC at least the recency-only baseline's plus this
    min_roc_auc_gain_over_recency: float = 0.0
    # first champion: PR AUC skill over the base rate, (PR AUC - base) / (1 - base), at
    # least this
    min_pr_auc_skill: float = 0.05
    promote_pr_auc_margin: float = 0.01  # challenger must beat champion's PR AUC by this

    def __post_init__(self) -> None:
        _between("churn.gate.min_roc_auc", self.min_roc_auc, 0.5, 1.0)
        _between(
            "churn.gate.min_roc_auc_gain_over_recency",
            self.min_roc_auc_gain_over_recency,
            -0.5,
            0.5,
        )
        _between("churn.gate.min_pr_auc_skill", self.min_pr_auc_skill, 0.0, 1.0)
        _between("churn.gate.promote_pr_auc_margin", self.promote_pr_auc_margin, 0.0, 0.5)


@dataclass(frozen=True)
class ChurnSettings:
    model_name: str = "churn_model"
    # churned = no activity in this many days after the cutoff
    horizon_days: int = 30
    lookback_days: int = 30  # eligible = active in the look-back window before the cutoff
    # training uses at most this many latest complete cutoffs
    max_cutoffs: int = 12
    # how positives are weighted in training
    class_weight: Literal["balanced", "explicit", "none"] = "balanced"
    positive_weight: float = 1.0  # class_weight: explicit
    capacity_share: float = 0.1  # intervention capacity: top share of eligible persons ...
    capacity_persons: int = 0  # ... or a fixed number when > 0
    features: list[str] = field(default_factory=list)  # empty: every numeric feature
    # features left out of the model
    exclude_features: list[str] = field(default_factory=list)
    # classifier kinds fitted; the best holdout PR AUC is registered
    models: list[Literal["logistic_regression", "gbt"]] = field(
        default_factory=lambda: ["logistic_regression", "gbt"]
    )
    lr_reg_param: float = 0.1
    gbt_max_iter: int = 30
    gbt_max_depth: int = 4
    calibrate: bool = True  # kept only when it lowers the Brier score on a held-back half
    # platt: logistic on the classifier's margin (monotone: keeps the ranking, so PR AUC);
    # isotonic: step function (can tie scores and cost ranking)
    calibration_method: Literal["platt", "isotonic"] = "platt"
    # also fit an AFT survival model: expected_active_days (restricted to the window)
    # and survival_probability (still active at the window's end)
    survival: bool = True
    survival_window_days: int = 90
    seed: int = 42
    gate: ChurnGate = field(default_factory=ChurnGate)
    shadow: bool = True  # also score the challenger and compare
    # realized PR AUC skill (ml.gate.pr_auc_skill) below this -> retrain recommended
    monitoring_min_pr_auc_skill: float = 0.05

    def __post_init__(self) -> None:
        _at_least("churn.horizon_days", self.horizon_days, 1)
        _at_least("churn.lookback_days", self.lookback_days, 1)
        _at_least("churn.max_cutoffs", self.max_cutoffs, 2)
        _between("churn.capacity_share", self.capacity_share, 0.0001, 1)
        _at_least("churn.capacity_persons", self.capacity_persons, 0)
        _at_least("churn.positive_weight", self.positive_weight, 0.0001)
        _at_least("churn.lr_reg_param", self.lr_reg_param, 0)
        _at_least("churn.gbt_max_iter", self.gbt_max_iter, 1)
        _between("churn.gbt_max_depth", self.gbt_max_depth, 1, 30)
        _between("churn.survival_window_days", self.survival_window_days, 1, 3650)
        _between("churn.monitoring_min_pr_auc_skill", self.monitoring_min_pr_auc_skill, 0, 1)
        if not self.models:
            raise ConfigError("churn.models: expected at least one of logistic_regression, gbt")


@dataclass(frozen=True)
class TaskSla:
    # a longer run is an SLA breach (and the Databricks task timeout)
    max_duration_minutes: float = 60.0
    # the task's output tables must have been written within this many hours at the end
    # of a pipeline run (a failed or skipped task leaves them stale)
    max_staleness_hours: float = 26.0

    def __post_init__(self) -> None:
        _between(
            ".max_duration_minutes",
            self.max_duration_minutes,
            1,
            7 * 24 * 60,
        )
        _at_least(".max_staleness_hours", self.max_staleness_hours, 0)


@dataclass(frozen=True)
class TaskSettings:
    job: str
    depends_on: list[str] = field(default_factory=list)
    args: list[str] = field(default_factory=list)
    retries: int = 0
    retry_delay_seconds: float = 5.0
    outputs: list[str] = field(default_factory=list)
    sla: TaskSla = field(default_factory=TaskSla)
    # all_success: skipped when an upstream task failed or was skipped; all_done: runs
    # once its upstream tasks have ended, whatever their outcome (erasure and retention:
    # a legal duty never waits on a model)
    run_if: Literal["all_success", "all_done"] = "all_success"

    def __post_init__(self) -> None:
        _at_least(".retries", self.retries, 0)
        _between(".retry_delay_seconds", self.retry_delay_seconds, 0, 3600)


@dataclass(frozen=True)
class PipelineSettings:
    schedule: str = "0 3 * * *"  # cron, minute hour day month weekday
    # timezone of the schedule
    timezone: str = "UTC"
    # task name -> job, depends_on, args, retries, retry_delay_seconds, outputs, sla
    tasks: dict[str, TaskSettings] = field(default_factory=dict)


@dataclass(frozen=True)
class RetentionRule:
    days: int
    column: str  # date/timestamp column compared with (reference date - days)


@dataclass(frozen=True)
class RetentionSettings:
    # now = today (UTC); data = the day after the last silver event (demo data, backfills)
    reference: Literal["now", "data"] = "now"
    # vacuum after retention keeps files removed within this many hours
    vacuum_retention_hours: float = 168.0
    # table -> {days, column}: rows older than days (by column) are deleted
    tables: dict[str, RetentionRule] = field(default_factory=dict)
    # A run that would delete more than this share of any table's rows stops before
    # deleting anything and asks for --force (1 = no guard).
    max_delete_share: float = 0.9

    def __post_init__(self) -> None:
        _at_least("retention.vacuum_retention_hours", self.vacuum_retention_hours, 0)
        _between("retention.max_delete_share", self.max_delete_share, 0.01, 1)
        for name, rule in self.tables.items():
            _at_least(f"retention.tables.{name}.days", rule.days, 1)


@dataclass(frozen=True)
class GovernanceSettings:
    # who governance actions are recorded as (ops.audit_log)
    actor: str = "behavior-lake"
    # export_report suppresses groups with fewer persons
    k_anonymity: int = 10
    export_endpoint_url: str | None = None  # S3-compatible endpoint for exports
    # region of the export bucket
    export_region: str = "us-east-1"
    # validity of the presigned URL of a subject export
    presign_seconds: int = 3600
    # a subject export file is deleted this many days after it was written
    # (enforce_retention), and at once when the subject is erased
    export_keep_days: int = 30

    def __post_init__(self) -> None:
        _at_least("governance.k_anonymity", self.k_anonymity, 2)
        _between("governance.presign_seconds", self.presign_seconds, 1, 7 * 24 * 3600)
        _between("governance.export_keep_days", self.export_keep_days, 1, 3650)


@dataclass(frozen=True)
class ReportSettings:
    # where build_report writes the insights site (index.html + one page per topic)
    insights_dir: str = "reports/insights"
    # rows of each panel's data table shown under its chart (all rows stay in the query)
    max_table_rows: int = 60

    def __post_init__(self) -> None:
        if not self.insights_dir.strip():
            raise ConfigError("reports.insights_dir: expected a folder path, got ''")
        _between("reports.max_table_rows", self.max_table_rows, 1, 10000)


# ---------------------------------------------------------------------------- experiments

METRIC_MEASURES = ("events", "revenue", "sessions", "active_days")


@dataclass(frozen=True)
class ExperimentMetric:
    """One metric of the experiment analysis, per exposed person (docs/experiments.md)."""

    # proportion (share of persons with measure > 0) | mean (per person) | ratio
    # (sum of measure / sum of denominator, delta method)
    kind: Literal["proportion", "mean", "ratio"]
    measure: Literal["events", "revenue", "sessions", "active_days"]
    # events / revenue: only this event (snake_case name); empty = every event
    event: str = ""
    # ratio metrics: the denominator measure
    denominator: str = ""
    # the window after first exposure, in days; to_day 0 = experiments.window_days
    from_day: int = 0
    to_day: int = 0
    # count a person only once the whole window is observed (retention-style metrics)
    full_window: bool = False
    # pre-exposure covariate for CUPED: a gold.user_features column (empty = none)
    covariate: str = ""
    # guardrail: a metric that must not get worse; reported, not a success criterion
    guardrail: bool = False

    def check(self, key: str, window_days: int) -> None:
        if self.kind == "ratio":
            if self.denominator not in METRIC_MEASURES:
                raise ConfigError(
                    f"{key}.denominator: expected one of {list(METRIC_MEASURES)} for a ratio, "
                    f"got {self.denominator!r}"
                )
        elif self.denominator:
            raise ConfigError(f"{key}.denominator: only ratio metrics have one")
        if self.event and self.measure not in ("events", "revenue"):
            raise ConfigError(f"{key}.event: only events and revenue measures filter by event")
        _between(f"{key}.from_day", self.from_day, 0, 3650)
        end = self.to_day or window_days
        if end <= self.from_day:
            raise ConfigError(
                f"{key}.to_day: expected more than from_day ({self.from_day}), got {end}"
            )
        if self.kind == "ratio" and self.covariate:
            raise ConfigError(f"{key}.covariate: CUPED is not applied to ratio metrics")


@dataclass(frozen=True)
class ExperimentSettings:
    # the variation every other is compared with; an experiment without it uses its
    # lowest variation id (sorted) as control
    control_variation: str = "control"
    # metrics count what a person does in this many days after first exposure
    window_days: int = 14
    alpha: float = 0.05
    # sample-ratio mismatch flagged (results and ops.experiment_alerts) below this p-value
    srm_alpha: float = 0.001
    # planned split per experiment: {experiment_id: {variation_id: weight}}; default equal
    splits: dict[str, dict[str, float]] = field(default_factory=dict)
    # mixture scale of the always-valid test, in standard deviations of the metric
    sequential_tau_sd: float = 0.1
    # a metric is analysed at a date once every variation has this many persons
    min_units_per_variation: int = 10
    metrics: dict[str, ExperimentMetric] = field(default_factory=dict)
    # campaign lift: persons' outcome in this many days after their first eligible decision
    campaign_window_days: int = 7

    def __post_init__(self) -> None:
        _between("experiments.window_days", self.window_days, 1, 365)
        _between("experiments.alpha", self.alpha, 0.0001, 0.5)
        _between("experiments.srm_alpha", self.srm_alpha, 1e-9, 0.5)
        _between("experiments.sequential_tau_sd", self.sequential_tau_sd, 0.001, 10)
        _between("experiments.min_units_per_variation", self.min_units_per_variation, 2, 10**7)
        _between("experiments.campaign_window_days", self.campaign_window_days, 1, 365)
        for name, metric in self.metrics.items():
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,62}", name):
                raise ConfigError(f"experiments.metrics.{name}: expected a snake_case name")
            metric.check(f"experiments.metrics.{name}", self.window_days)
        for exp, split in self.splits.items():
            if not split or min(split.values()) <= 0:
                raise ConfigError(
                    f"experiments.splits.{exp}: expected positive weights per variation, got {split}"
                )


# ---------------------------------------------------------------------------- activation

RULE_KINDS = ("event", "timer", "score", "segment_change")
SCORE_FIELDS = ("churn_probability",)


def _hhmm(key: str, value: str) -> int:
    """Minutes after midnight of "HH:MM"."""
    m = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", value)
    if not m:
        raise ConfigError(f"{key}: expected a time HH:MM (00:00..23:59), got {value!r}")
    return int(m.group(1)) * 60 + int(m.group(2))


@dataclass(frozen=True)
class ActivationRule:
    """One trigger rule (conf/base/activation.yml, docs/activation.md)."""

    id: str
    kind: Literal["event", "timer", "score", "segment_change"]
    campaign: str
    channel: str
    version: int = 1
    # event: fires on this event (Segment name); timer: starts the clock
    event: str = ""
    # event rules: only when the event's value (revenue, or price x quantity) >= this
    min_value: float = 0.0
    # timer: fires `minutes` after `event` unless `unless_event` came first
    unless_event: str = ""
    minutes: int = 0
    # score: fires when `score` crosses `threshold` upwards (gold scores, stream-static join)
    score: str = "churn_probability"
    threshold: float = 0.0
    # Segment consent category the action needs (context.consent.categoryPreferences.<x>)
    consent: str = ""
    cooldown_hours: float = 24.0
    # share of persons (hash of person and campaign) who get no action, logged as holdout
    holdout_share: float = 0.1
    # payload template: values may name {cart_value}, {event}, {churn_probability}, ...
    payload: dict[str, str] = field(default_factory=dict)
    # experiments.metrics entry the campaign's lift is measured on (gold.campaign_lift)
    target_metric: str = "conversion"
    enabled: bool = True

    def check(self, key: str) -> None:
        if not re.fullmatch(r"[a-z][a-z0-9_]{0,62}", self.id):
            raise ConfigError(f"{key}.id: expected snake_case (a-z, 0-9, _), got {self.id!r}")
        for name in ("campaign", "channel"):
            if not getattr(self, name).strip():
                raise ConfigError(f"{key}.{name}: required for every rule")
        _at_least(f"{key}.version", self.version, 1)
        _at_least(f"{key}.cooldown_hours", self.cooldown_hours, 0)
        _between(f"{key}.holdout_share", self.holdout_share, 0, 0.9)
        _at_least(f"{key}.min_value", self.min_value, 0)
        if self.kind in ("event", "timer") and not self.event.strip():
            raise ConfigError(f"{key}.event: required for kind {self.kind!r}")
        if self.kind == "timer":
            _between(f"{key}.minutes", self.minutes, 1, 7 * 24 * 60)
            if not self.unless_event.strip():
                raise ConfigError(f"{key}.unless_event: required for kind 'timer'")
        if self.kind == "score":
            if self.score not in SCORE_FIELDS:
                raise ConfigError(
                    f"{key}.score: expected one of {list(SCORE_FIELDS)}, got {self.score!r}"
                )
            _between(f"{key}.threshold", self.threshold, 0.0001, 1)


@dataclass(frozen=True)
class QuietHours:
    # UTC, by event time; start == end disables them. A window may cross midnight.
    start: str = "22:00"
    end: str = "07:00"

    def __post_init__(self) -> None:
        _hhmm("activation.quiet_hours.start", self.start)
        _hhmm("activation.quiet_hours.end", self.end)

    def minutes(self) -> tuple[int, int]:
        return _hhmm("start", self.start), _hhmm("end", self.end)


@dataclass(frozen=True)
class WebhookSettings:
    # where fired decisions and the daily profile sync are POSTed (empty: not sent)
    url: str = ""
    # environment variable holding the HMAC-SHA256 signing key (never in the repository)
    secret_env: str = "BEHAVIOR_LAKE_WEBHOOK_SECRET"
    max_attempts: int = 4
    backoff_seconds: float = 0.5  # doubled after each failed attempt
    timeout_seconds: float = 5.0
    batch_size: int = 500  # profile sync: persons per request

    def __post_init__(self) -> None:
        _between("activation.webhook.max_attempts", self.max_attempts, 1, 20)
        _between("activation.webhook.backoff_seconds", self.backoff_seconds, 0, 60)
        _between("activation.webhook.timeout_seconds", self.timeout_seconds, 0.1, 120)
        _between("activation.webhook.batch_size", self.batch_size, 1, 10000)
        if self.url and not re.match(r"https?://", self.url):
            raise ConfigError(f"activation.webhook.url: expected http(s)://..., got {self.url!r}")


@dataclass(frozen=True)
class RedisSettings:
    url: str = "redis://127.0.0.1:6379/0"
    prefix: str = "bl:"
    ttl_hours: float = 48.0  # a profile not refreshed for this long expires
    timeout_seconds: float = 0.05  # per command: past it the API answers from the snapshot

    def __post_init__(self) -> None:
        if not re.match(r"rediss?://", self.url):
            raise ConfigError(f"activation.redis.url: expected redis://..., got {self.url!r}")
        _between("activation.redis.ttl_hours", self.ttl_hours, 0.01, 24 * 365)
        _between("activation.redis.timeout_seconds", self.timeout_seconds, 0.001, 10)


@dataclass(frozen=True)
class ApiSettings:
    host: str = "127.0.0.1"
    port: int = 8088
    # sha256 hex of each accepted API key (X-API-Key); the keys themselves are never stored
    key_sha256: list[str] = field(default_factory=list)
    rate_per_second: float = 2000.0  # per key (token bucket, burst = one second's worth)
    answer_log: str = "activation_api"  # folder (under lake.root) of the answer log (JSON lines)
    # uvicorn worker processes (each holds its own snapshot; the key's rate is split among them)
    workers: int = 2

    def __post_init__(self) -> None:
        _between("activation.api.port", self.port, 1, 65535)
        _between("activation.api.workers", self.workers, 1, 64)
        _between("activation.api.rate_per_second", self.rate_per_second, 0.1, 1_000_000)
        for i, h in enumerate(self.key_sha256):
            if not re.fullmatch(r"[0-9a-f]{64}", h):
                raise ConfigError(f"activation.api.key_sha256[{i}]: expected 64 hex characters")


@dataclass(frozen=True)
class ActivationSettings:
    # where the stream reads events: the landing folder (files) or Kafka
    source: Literal["files", "kafka"] = "files"
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_topic: str = "behavior-events"
    kafka_starting_offsets: Literal["earliest", "latest"] = "earliest"  # first start only
    max_offsets_per_trigger: int = 100_000  # Kafka records per micro-batch
    # real-time mode (instant event rules, Kafka to Kafka): its checkpoint interval
    realtime_checkpoint_seconds: int = 60
    realtime_topic: str = "behavior-decisions-instant"
    trigger_seconds: float = 1.0  # micro-batch interval
    max_files_per_trigger: int = 100
    # how late (event time) an event may be and still count; timers fire once the
    # watermark (latest event time - this) passes them
    watermark_minutes: int = 10
    # checkpoints of the streaming queries (empty: <lake.root>/_checkpoints/activation)
    checkpoint_dir: str = ""
    # actions per person and UTC day across all rules (fatigue); holdouts count too
    daily_cap_per_person: int = 3
    quiet_hours: QuietHours = field(default_factory=QuietHours)
    # per-person state with no event for this long is dropped
    state_idle_days: int = 30
    rules: list[ActivationRule] = field(default_factory=list)
    webhook: WebhookSettings = field(default_factory=WebhookSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    api: ApiSettings = field(default_factory=ApiSettings)

    def __post_init__(self) -> None:
        _between("activation.trigger_seconds", self.trigger_seconds, 0, 3600)
        _between("activation.max_files_per_trigger", self.max_files_per_trigger, 1, 100000)
        _between("activation.max_offsets_per_trigger", self.max_offsets_per_trigger, 1, 10**9)
        _between(
            "activation.realtime_checkpoint_seconds", self.realtime_checkpoint_seconds, 5, 86400
        )
        if self.source == "kafka":
            for key in ("kafka_bootstrap", "kafka_topic"):
                if not getattr(self, key).strip():
                    raise ConfigError(f"activation.{key}: required when activation.source is kafka")
        _between("activation.watermark_minutes", self.watermark_minutes, 0, 7 * 24 * 60)
        _between("activation.daily_cap_per_person", self.daily_cap_per_person, 1, 1000)
        _between("activation.state_idle_days", self.state_idle_days, 1, 3650)
        _check_items("activation.rules", self.rules)


@dataclass(frozen=True)
class Settings:
    env: str
    lake: LakeSettings
    landing: LandingSettings
    privacy: PrivacySettings
    spark: SparkSettings = field(default_factory=SparkSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    bronze: BronzeSettings = field(default_factory=BronzeSettings)
    silver: SilverSettings = field(default_factory=SilverSettings)
    generator: GeneratorSettings = field(default_factory=GeneratorSettings)
    gold: GoldSettings = field(default_factory=GoldSettings)
    mlflow: MlflowSettings = field(default_factory=MlflowSettings)
    segments: SegmentSettings = field(default_factory=SegmentSettings)
    churn: ChurnSettings = field(default_factory=ChurnSettings)
    pipeline: PipelineSettings = field(default_factory=PipelineSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    governance: GovernanceSettings = field(default_factory=GovernanceSettings)
    reports: ReportSettings = field(default_factory=ReportSettings)
    activation: ActivationSettings = field(default_factory=ActivationSettings)
    experiments: ExperimentSettings = field(default_factory=ExperimentSettings)
    conf_dir: str = "conf"

    def __post_init__(self) -> None:
        metrics = self.experiments.metrics
        for i, rule in enumerate(self.activation.rules):
            if metrics and rule.target_metric not in metrics:
                raise ConfigError(
                    f"activation.rules[{i}].target_metric: expected one of "
                    f"{sorted(metrics)} (experiments.metrics), got {rule.target_metric!r}"
                )


# ---------------------------------------------------------------------------- loading


def default_conf_dir() -> Path:
    """`BEHAVIOR_LAKE_CONF` if set, else `conf/` of the working dir, else the conf the
    package ships (the wheel holds it; in a checkout it links to the repository's)."""
    if os.environ.get("BEHAVIOR_LAKE_CONF"):
        return Path(os.environ["BEHAVIOR_LAKE_CONF"])
    cwd = Path.cwd() / "conf"
    if (cwd / "base").is_dir():
        return cwd
    return Path(__file__).resolve().parent / "conf"


def load_settings(
    env: str = "local",
    overrides: list[str] | None = None,
    conf_dir: str | Path | None = None,
) -> Settings:
    """Merge base + env YAML + `key=value` overrides and build typed settings."""
    root = Path(conf_dir) if conf_dir else default_conf_dir()
    if not (root / "base").is_dir():
        raise ConfigError(f"config folder {root}/base not found (set BEHAVIOR_LAKE_CONF)")
    env_dir = root / env
    if env not in ENVIRONMENTS and not env_dir.is_dir():
        raise ConfigError(f"--env: unknown environment {env!r}; expected one of {ENVIRONMENTS}")
    data: dict[str, Any] = {}
    for folder in (root / "base", env_dir):
        for path in sorted(folder.glob("*.yml")) if folder.is_dir() else []:
            loaded = yaml.safe_load(path.read_text()) or {}
            if not isinstance(loaded, dict):
                raise ConfigError(f"{path}: expected a mapping at top level")
            _deep_merge(data, loaded)
    for item in overrides or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--conf {item!r}: expected dotted.key=value")
        _set_dotted(data, key.strip(), yaml.safe_load(raw) if raw.strip() else "")
    data["env"] = env
    data["conf_dir"] = str(root)
    settings = build(Settings, _resolve_env(data, ""), "")
    from behavior_lake.privacy_keys import check_keys, with_secret_keys

    settings = with_secret_keys(settings)
    check_keys(settings)
    return settings


def _deep_merge(into: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value


def _set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = data
    for part in parts[:-1]:
        nxt = node.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"--conf {key}: {part!r} is not a section")
        node = nxt
    node[parts[-1]] = value


def _resolve_env(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        return {k: _resolve_env(v, f"{key}.{k}" if key else k) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_env(v, key) for v in value]
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise ConfigError(f"{key}: environment variable {name} is not set")

        return _ENV_REF.sub(sub, value)
    return value


def build(cls: type, data: Any, key: str) -> Any:
    """Build dataclass `cls` from a mapping, checking keys and types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{key or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        names = ", ".join(f"{key}.{u}" if key else u for u in unknown)
        raise ConfigError(f"unknown config key(s): {names}; expected one of {sorted(fields)}")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        dotted = f"{key}.{name}" if key else name
        if name in data:
            kwargs[name] = _coerce(hints[name], data[name], dotted)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            if dataclasses.is_dataclass(hints[name]):
                kwargs[name] = build(hints[name], {}, dotted)
            else:
                raise ConfigError(f"{dotted}: required value is missing")
    try:
        return cls(**kwargs)
    except ConfigError as exc:  # checks of a nested section name keys relative to it
        if str(exc).startswith("."):
            raise ConfigError(f"{key}{exc}") from None
        raise


def _coerce(tp: Any, value: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, key)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, key)
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: expected one of {list(args)}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(args[0], v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {str(k): _coerce(args[1], v, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if isinstance(value, bool) or value is None or isinstance(value, dict | list):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    raise ConfigError(f"{key}: unsupported config type {tp}")  # pragma: no cover
