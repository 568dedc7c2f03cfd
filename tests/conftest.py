"""Shared fixtures: ONE SparkSession per test session (JVM start costs ~15 s)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from behavior_lake.config import Settings, load_settings
from behavior_lake.jars import cached_jars, missing_reason
from behavior_lake.lake import Lake, choose_engine, make_lake
from behavior_lake.spark import build_session, delta_spark_available

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"

TEST_SPARK_CONF = {
    # C1 only (fast warm-up for short tests); its default 48 MB code cache fills up over
    # the whole suite ("CodeCache is full", then the JVM dies), so it is raised.
    "spark.driver.extraJavaOptions": (
        "-XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m"
    ),
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.sql.adaptive.coalescePartitions.enabled": "true",
    # Tests run tiny data through very wide expressions: compiling generated code costs
    # more than it saves there. Production keeps whole-stage codegen on.
    "spark.sql.codegen.wholeStage": "false",
}


def lake_test_settings(lake_root: str | os.PathLike[str], *overrides: str) -> Settings:
    return load_settings(
        "local",
        [
            f"lake.root={lake_root}",
            "spark.master=local[2]",
            "spark.shuffle_partitions=2",
            "spark.driver_memory=2g",
            *overrides,
        ],
        conf_dir=CONF,
    )


def catalog_for(lake_root: str | os.PathLike[str], *overrides: str):
    """The resolved catalog (every table spec) for test settings over `lake_root`."""
    from behavior_lake.catalog import resolve

    return resolve(lake_test_settings(lake_root, *overrides))


# What the JVM reads S3 credentials from (s3a's environment-variable provider): set
# while the session's JVM starts, for the local S3 server of the tests only.
S3_TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    settings = lake_test_settings(tmp_path_factory.mktemp("lake"))
    conf = dict(TEST_SPARK_CONF)
    # managed tables (lake.catalog) of the session catalog go here, not into the checkout
    conf["spark.sql.warehouse.dir"] = str(tmp_path_factory.mktemp("warehouse"))
    # hadoop-aws + the AWS SDK for the s3a:// tests, the Kafka source for activation's
    extra_jars = (cached_jars(["s3"]) or []) + (cached_jars(["kafka"]) or [])
    if extra_jars:
        conf["spark.jars"] = ",".join(extra_jars)
    saved = {k: os.environ.get(k) for k in S3_TEST_ENV}
    os.environ.update(S3_TEST_ENV)
    try:
        session = build_session(settings, conf)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


ENGINES = ["delta-rs", "delta-spark"]


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest, spark: SparkSession) -> str:
    if request.param == "delta-spark" and not delta_spark_available(spark):
        if cached_jars(["delta"]):
            pytest.fail("the Delta jars are cached but their classes did not load")
        pytest.skip(f"delta-spark engine: {missing_reason(['delta'])} (`make jars`)")
    return request.param


@pytest.fixture
def lake_root(tmp_path: Path) -> str:
    return str(tmp_path / "lakehouse")


@pytest.fixture
def lake(spark: SparkSession, lake_root: str, engine: str) -> Lake:
    """A Lake over a fresh temp root, for every available engine."""
    return make_lake(spark, lake_root, engine, catalog_for(lake_root))


@pytest.fixture(scope="session")
def default_engine(spark: SparkSession) -> str:
    """What lake.engine auto picks in the test session: delta-spark when its jars are
    cached (they are wherever `make install` reached Maven Central), else delta-rs."""
    return choose_engine(spark, "auto")


@pytest.fixture
def default_lake(spark: SparkSession, lake_root: str, default_engine: str) -> Lake:
    return make_lake(spark, lake_root, default_engine, catalog_for(lake_root))


@pytest.fixture
def rs_lake(spark: SparkSession, lake_root: str) -> Lake:
    """The embedded delta-rs Lake (always available)."""
    return make_lake(spark, lake_root, "delta-rs", catalog_for(lake_root))


@pytest.fixture
def s3_server(tmp_path: Path, monkeypatch):
    """A local S3-compatible server (moto in server mode, a real HTTP endpoint)."""
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    exe = Path(sys.executable).parent / "moto_server"
    proc = subprocess.Popen(
        [str(exe), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url, timeout=1)
            break
        except Exception:
            time.sleep(0.1)
    for k, v in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(k, v)
    yield url
    proc.terminate()
    proc.wait(timeout=10)
