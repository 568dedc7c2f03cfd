"""Lake and landing zone on an S3 API (a local S3 server on 127.0.0.1): delta-spark over
s3a:// through hadoop-aws gives the same tables as the local-disk demo lake, and bronze
lists the landing files on S3. Credentials come from environment variables only."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from behavior_lake.bronze.ingest import ingest
from behavior_lake.gold.build import build_features
from behavior_lake.jars import cached_jars
from behavior_lake.lake import make_lake
from behavior_lake.silver.build import build_silver
from tests.conftest import S3_TEST_ENV
from tests.integration.conftest import Demo
from tests.integration.parity import table_differences

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def s3a_settings(endpoint: str) -> dict[str, str]:
    """What a user puts under spark.extra for an S3-compatible endpoint (no secrets)."""
    return {
        "spark.hadoop.fs.s3a.endpoint": endpoint,
        "spark.hadoop.fs.s3a.endpoint.region": "us-east-1",
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
    }


def upload_tree(client, bucket: str, local: Path, prefix: str) -> int:
    n = 0
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(local).as_posix()}")
        n += 1
    return n


def test_pipeline_on_s3_equals_local_disk(
    spark: SparkSession, demo: Demo, s3_server: str, default_engine: str
) -> None:
    if default_engine != "delta-spark" or not cached_jars(["s3"]):
        pytest.skip("needs the Delta and hadoop-aws jars in the cache (`make jars`)")
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    client.create_bucket(Bucket="lake")
    landed = upload_tree(client, "lake", Path(demo.settings.landing.root), "landing")
    hconf = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[attr-defined]
    for key, value in s3a_settings(s3_server).items():
        hconf.set(key.removeprefix("spark.hadoop."), value)
    s = demo.settings
    s = replace(
        s,
        lake=replace(s.lake, root="s3a://lake/lakehouse", engine="delta-spark"),
        landing=replace(s.landing, root="s3a://lake/landing"),
    )
    lake = make_lake(spark, s.lake.root, "delta-spark", demo.lake.specs)
    batches = ingest(lake, s, demo.taxonomy, "s3-bronze")
    assert sum(b.files for b in batches) == landed > 0  # listed on S3
    build_silver(lake, s, demo.taxonomy, "s3-silver")
    build_features(lake, s, demo.taxonomy, demo.as_of_dates)
    # the tables are on S3, not on a local disk
    keys = client.list_objects_v2(Bucket="lake", Prefix="lakehouse/silver/events/_delta_log/")
    assert keys.get("KeyCount", 0) > 0
    listed = lake.read("ops.ingested_files").select("source_file").distinct().count()
    assert listed == landed
    # the same rows as on the local disk
    assert table_differences(demo.lake, lake, s.privacy.encryption_key) == {}
    # credentials came from the JVM's environment (Spark copies AWS_ACCESS_KEY_ID and
    # AWS_SECRET_ACCESS_KEY into its in-memory Hadoop configuration at start-up), never
    # from the project's settings or the Spark configuration that logs and the UI show
    assert not [k for k in s.spark.extra if "key" in k.lower() or "secret" in k.lower()]
    assert not [k for k, _ in spark.sparkContext.getConf().getAll() if "secret" in k.lower()]
    assert hconf.get("fs.s3a.secret.key") == S3_TEST_ENV["AWS_SECRET_ACCESS_KEY"]
