"""SparkSession factory: local mode for laptops/CI/tests, getOrCreate() on clusters."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession

from behavior_lake.config import Settings
from behavior_lake.jars import cached_jars, missing_reason
from behavior_lake.privacy_keys import CONF_REDACTION_REGEX

log = logging.getLogger(__name__)

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"

# Settings both engines rely on: UTC everywhere, Delta-compatible parquet timestamps,
# partition column types from the table schema rather than guessed from paths.
BASE_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.sources.partitionColumnTypeInference.enabled": "false",
    "spark.sql.parquet.datetimeRebaseModeInWrite": "CORRECTED",
    "spark.sql.parquet.int96RebaseModeInWrite": "CORRECTED",
    "spark.ui.showConsoleProgress": "false",
    # plans of wide frames (one field per taxonomy property) are described whole
    "spark.sql.debug.maxToStringFields": "1000",
}
LISTING_THRESHOLD = "spark.sql.sources.parallelPartitionDiscovery.threshold"
LOCAL_LISTING_THRESHOLD = 100_000
DEFAULT_PARALLELISM = "spark.default.parallelism"


def persist_large(df: DataFrame, settings: Settings) -> DataFrame:
    """Persist a cache that grows with the input at `spark.large_cache_level`."""
    level = getattr(StorageLevel, settings.spark.large_cache_level)
    return df.persist(level)


class Caches:
    """The frames one job step persists; `cache_scope` releases them all when the step
    ends, failures included."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._frames: list[DataFrame] = []

    def keep(self, df: DataFrame, level: StorageLevel = StorageLevel.MEMORY_AND_DISK):
        """Persist a small or bounded frame (default: memory, spilling to disk)."""
        kept = df.persist(level)
        self._frames.append(kept)
        return kept

    def track(self, df: DataFrame) -> DataFrame:
        """Release a frame persisted elsewhere with the others."""
        self._frames.append(df)
        return df

    def large(self, df: DataFrame) -> DataFrame:
        """Persist a frame that grows with the input (`spark.large_cache_level`)."""
        kept = persist_large(df, self._settings)
        self._frames.append(kept)
        return kept

    def release(self) -> None:
        while self._frames:
            self._frames.pop().unpersist()


@contextmanager
def cache_scope(settings: Settings) -> Iterator[Caches]:
    caches = Caches(settings)
    try:
        yield caches
    finally:
        caches.release()


@contextmanager
def session_conf(spark: SparkSession, settings: Mapping[str, str]) -> Iterator[None]:
    """Runtime SQL settings that hold inside the block; each is restored (or unset) after."""
    old = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


class JavaMissingError(RuntimeError):
    pass


def check_java() -> None:
    """Fail with one clear line when no Java runtime can start Spark."""
    java_home = os.environ.get("JAVA_HOME")
    java = os.path.join(java_home, "bin", "java") if java_home else shutil.which("java")
    if not java or not os.path.exists(java):
        raise JavaMissingError(
            "Java not found: Spark needs a Java 17 or 21 runtime "
            "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless; or set JAVA_HOME)"
        )
    try:
        subprocess.run([java, "-version"], capture_output=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise JavaMissingError(f"Java at {java} does not run: {exc}") from exc


class JarsMissingError(RuntimeError):
    pass


# s3:// too: the delta-rs engine reads and writes an s3:// lake through hadoop-aws (s3a)
S3A_SCHEMES = ("s3a://", "s3://")


def uses_s3a(settings: Settings) -> bool:
    roots = (settings.lake.root, settings.landing.root)
    return any(str(r).startswith(S3A_SCHEMES) for r in roots)


def local_delta_conf(partitions: int) -> dict[str, str]:
    """delta-spark settings for one machine. Delta rebuilds a table's snapshot with
    50 tasks and VACUUM lists files with spark.sql.sources.parallelPartitionDiscovery
    .parallelism (10000) tasks: on 2 cores a 3-file vacuum took 40 s, 3.5 s with these."""
    return {
        "spark.databricks.delta.snapshotPartitions": str(partitions),
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(2 * partitions),
    }


def coalescing_floor(shuffle_partitions: int) -> dict[str, str]:
    """Local sessions: adaptive execution coalesces no shuffle below this many partitions
    unless it is too small to give each the minimum partition size."""
    return {DEFAULT_PARALLELISM: str(shuffle_partitions)}


def local_jars(settings: Settings) -> tuple[list[str], bool]:
    """Jars a local-mode session takes from the cache, and whether Delta is among them.

    Delta's jars unless lake.engine is delta-rs; hadoop-aws and the AWS SDK when the lake
    or the landing zone is on s3a://; the Kafka source when activation.source is kafka.
    A missing Delta set is not an error under
    lake.engine auto (the engine falls back to delta-rs and says why); a missing S3 set is.
    """
    jars: list[str] = []
    with_delta = False
    if settings.lake.engine != "delta-rs":
        delta = cached_jars(["delta"])
        if delta:
            jars += delta
            with_delta = True
        elif settings.lake.engine == "delta-spark":
            raise JarsMissingError(
                f"lake.engine is delta-spark but {missing_reason(['delta'])}: run `make jars` "
                "(needs Maven Central), or set lake.engine: delta-rs"
            )
        else:
            log.info(
                "delta-spark unavailable (%s; `make jars` fetches them): "
                "lake.engine auto uses delta-rs",
                missing_reason(["delta"]),
            )
    if uses_s3a(settings):
        s3 = cached_jars(["s3"])
        if not s3:
            raise JarsMissingError(
                f"lake.root/landing.root use s3a:// but {missing_reason(['s3'])}: "
                "run `make jars` (needs Maven Central)"
            )
        jars += s3
    if settings.activation.source == "kafka":
        kafka = cached_jars(["kafka"])
        if not kafka:
            raise JarsMissingError(
                f"activation.source is kafka but {missing_reason(['kafka'])}: "
                "run `make jars` (needs Maven Central)"
            )
        jars += kafka
    return jars, with_delta


def build_session(settings: Settings, extra_conf: dict[str, str] | None = None) -> SparkSession:
    """Local mode (`spark.master` set) or the cluster's session (`spark.master: null`)."""
    sp = settings.spark
    builder = SparkSession.builder.appName(sp.app_name)
    conf = dict(BASE_CONF)
    conf["spark.sql.shuffle.partitions"] = str(sp.shuffle_partitions)
    conf["spark.ui.enabled"] = str(sp.ui_enabled).lower()
    # On a cluster the jars and Delta's session settings come from spark-submit (or the
    # platform); the session only asks for Delta when the engine is named explicitly.
    wants_delta_spark = settings.lake.engine == "delta-spark"
    if sp.master:
        check_java()
        builder = builder.master(sp.master)
        # Local workers must run the driver's interpreter (the venv with this package).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        # A local session listens on the loopback only (and Spark does not warn that the
        # host name resolves to it).
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        conf["spark.driver.extraJavaOptions"] = f"-Dlog4j2.configurationFile={LOG4J}"
        conf["spark.driver.memory"] = sp.driver_memory
        # The delta-rs engine hands Spark each table's file list. Above 32 paths Spark
        # lists them with a distributed job; on a local disk the driver stats them
        # faster. Clusters keep Spark's default.
        conf[LISTING_THRESHOLD] = str(LOCAL_LISTING_THRESHOLD)
        # Adaptive execution coalesces shuffle partitions down to the default parallelism
        # (the core count) by size: four equal partitions whose pairs straddle half the
        # total become 3 tasks, and one of 2 cores idles through the second wave
        # (docs/benchmarks.md). With the default parallelism at spark.shuffle_partitions,
        # only shuffles too small to give every partition the minimum partition size are
        # coalesced. (Not minPartitionNum: deprecated.)
        conf.update(coalescing_floor(sp.shuffle_partitions))
        jars, wants_delta_spark = local_jars(settings)
        if jars:
            conf["spark.jars"] = ",".join(jars)
        if wants_delta_spark:
            conf.update(local_delta_conf(sp.shuffle_partitions))
    if wants_delta_spark:
        conf["spark.sql.extensions"] = DELTA_EXTENSION
        conf["spark.sql.catalog.spark_catalog"] = DELTA_CATALOG
    # Names of settings and environment variables whose values the UI and the event
    # log hide: Spark's default list plus the two privacy keys' variables.
    conf["spark.redaction.regex"] = CONF_REDACTION_REGEX
    ours = {k: conf[k] for k in ("spark.jars", "spark.driver.extraJavaOptions") if k in conf}
    for extra in (sp.extra, extra_conf or {}):
        for key, value in extra.items():
            # A user's own jars and JVM options are added to ours, not put in their place
            # (a later layer replaces an earlier one's: two GC flags would kill the JVM).
            if key == "spark.jars" and key in ours:
                value = f"{ours[key]},{value}"
            if key == "spark.driver.extraJavaOptions" and key in ours:
                value = f"{ours[key]} {value}"
            conf[key] = value
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    # Runtime settings also apply when getOrCreate() returned an existing session.
    for key in (
        "spark.sql.session.timeZone",
        "spark.sql.parquet.outputTimestampType",
        "spark.sql.shuffle.partitions",
        LISTING_THRESHOLD,
    ):
        if key in conf:
            spark.conf.set(key, conf[key])
    _quiet_known_warnings(spark)
    log.info("spark session ready: master=%s version=%s", spark.sparkContext.master, spark.version)
    return spark


# WARN lines about choices made on purpose, for sessions whose JVM did not start with
# log4j2.properties (clusters, notebooks): WindowExec warns of every window without a
# partition; ours are global rankings on purpose (risk deciles, percent ranks, shares of
# all transitions, vocabulary ranks), over frames of at most one row per person, n-gram
# or transition.
LOG4J = Path(__file__).resolve().parent / "log4j2.properties"
QUIET_LOGGERS = ("org.apache.spark.sql.execution.window.WindowExec",)


def _quiet_known_warnings(spark: SparkSession) -> None:
    try:
        jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
        level = jvm.org.apache.logging.log4j.Level.ERROR
        for name in QUIET_LOGGERS:
            jvm.org.apache.logging.log4j.core.config.Configurator.setLevel(name, level)
    except Exception:  # another logging backend: the notices stay
        log.debug("could not lower the level of %s", QUIET_LOGGERS)


def delta_spark_available(spark: SparkSession) -> bool:
    """True when the Delta JVM classes can be loaded in this session."""
    try:
        jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
        jvm.java.lang.Class.forName(
            "io.delta.tables.DeltaTable", True, jvm.Thread.currentThread().getContextClassLoader()
        )
        return True
    except Exception:
        return False
