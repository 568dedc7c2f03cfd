"""Lake and landing zone on an S3 API (a local S3 server on 127.0.0.1): on both engines
(delta-spark over s3a:// through hadoop-aws; delta-rs committing to s3:// while Spark
moves the data over s3a://) the pipeline gives the same tables as the local-disk demo
lake, and bronze lists the landing files on S3. Credentials come from environment
variables only."""

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

# The pipeline comparisons are end-to-end runs (make test-e2e); the delta-rs write paths
# on S3 take seconds and run in make test.


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


def s3_session(spark: SparkSession, s3_server: str, bucket: str):
    """A bucket on the test server, and the session's hadoop-aws pointed at it. Each test
    has its own server and bucket name: Hadoop caches one S3A client per bucket, with the
    endpoint of its first use."""
    if not cached_jars(["s3"]):
        pytest.skip("needs the hadoop-aws jars in the cache (`make jars`)")
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    hconf = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[attr-defined]
    for key, value in s3a_settings(s3_server).items():
        hconf.set(key.removeprefix("spark.hadoop."), value)
    return client, hconf


def object_keys(client, bucket: str, prefix: str) -> set[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


@pytest.mark.slow
@pytest.mark.e2e
@pytest.mark.parametrize("engine_name", ["delta-spark", "delta-rs"])
def test_pipeline_on_s3_equals_local_disk(
    spark: SparkSession,
    demo: Demo,
    s3_server: str,
    default_engine: str,
    engine_name: str,
    tmp_path: Path,
) -> None:
    if default_engine != "delta-spark":
        pytest.skip("the demo lake to compare with is built on delta-spark (`make jars`)")
    bucket = f"lake-{engine_name}"
    client, hconf = s3_session(spark, s3_server, bucket)
    landed = upload_tree(client, bucket, Path(demo.settings.landing.root), "landing")
    s = demo.settings
    s = replace(
        s,
        lake=replace(s.lake, root=f"s3a://{bucket}/lakehouse", engine=engine_name),
        landing=replace(s.landing, root=f"s3a://{bucket}/landing"),
    )
    lake = make_lake(spark, s.lake.root, engine_name, demo.lake.specs)
    batches = ingest(lake, s, demo.taxonomy, "s3-bronze")
    assert sum(b.files for b in batches) == landed > 0  # listed on S3
    build_silver(lake, s, demo.taxonomy, "s3-silver")
    build_features(lake, s, demo.taxonomy, demo.as_of_dates)
    # the tables are on S3, not on a local disk
    keys = client.list_objects_v2(Bucket=bucket, Prefix="lakehouse/silver/events/_delta_log/")
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
    erase_one_subject_on_s3(demo, lake, client, bucket, tmp_path)


def download(client, bucket: str, prefix: str, dest: Path) -> Path:
    for key in sorted(object_keys(client, bucket, prefix)):
        if not key.endswith("/"):
            target = dest / key
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, key, str(target))
    return dest / prefix


def erase_one_subject_on_s3(demo: Demo, lake, client, bucket: str, tmp_path: Path) -> None:
    """Erasure on S3: a table outside the catalog is found by listing the bucket, the
    subject leaves every object (data files, logs, checkpoints), another person stays."""
    from pyspark.sql import functions as F

    from behavior_lake.governance.erasure import file_requests, process_pending
    from behavior_lake.lake import TableSpec
    from behavior_lake.privacy.pseudonym import user_person_id
    from tests.integration.test_governance import files_mentioning, subjects

    s = replace(demo.settings, lake=replace(demo.settings.lake, root=lake.root))
    u, other = subjects(demo)[0], subjects(demo)[1]
    pids = {
        x["user_id"]: lake.spark.range(1)
        .select(user_person_id(F.lit(x["user_id"]), s.privacy.pseudonym_key))
        .first()[0]
        for x in (u, other)
    }
    # a table the catalog does not declare (a user's scratch copy) on the same root
    copy = lake.read("silver.events").select("person_id", "event_name")
    spec = TableSpec(
        "scratch.events_copy", copy.schema, grain="scratch", unkeyed="a copy with duplicates"
    )
    make_lake(lake.spark, lake.root, lake.engine, {spec.name: spec}).append(spec.name, copy)
    needles = [u["user_id"], pids[u["user_id"]]]
    before = download(client, bucket, "lakehouse/", tmp_path / "before")
    assert files_mentioning(str(before), needles)  # the subject is on S3 before
    file_requests(lake, s, [u["user_id"]], [])
    [result] = process_pending(lake, s, "s3-erase")
    assert result.status == "done", result.detail
    assert result.per_table.get("scratch.events_copy", 0) > 0
    assert lake.read("silver.events").filter(F.col("person_id") == pids[u["user_id"]]).count() == 0
    after = download(client, bucket, "lakehouse/", tmp_path / "after")
    assert files_mentioning(str(after), needles) == []
    assert files_mentioning(str(after), [pids[other["user_id"]]])  # another person stays


def test_delta_rs_lake_operations_on_s3(spark: SparkSession, s3_server: str) -> None:
    """Every write path of the embedded engine on an S3 API: append, overwrite where,
    merge, replace keys, delete, schema evolution, restore; vacuum deletes the objects.
    The log is on S3 (delta-rs, `s3://`), the data files too (Spark, `s3a://`)."""
    from datetime import date

    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    from behavior_lake.governance.erasure import leftover_files
    from behavior_lake.lake import TableSpec, Where

    client, _ = s3_session(spark, s3_server, "lake-rs")
    schema = T.StructType(
        [
            T.StructField("id", T.LongType()),
            T.StructField("name", T.StringType()),
            T.StructField("event_date", T.DateType()),
        ]
    )
    spec = TableSpec("test.items", schema, ("event_date",), grain="one row per id", key=("id",))
    lake = make_lake(spark, "s3a://lake-rs/rs", "delta-rs", {spec.name: spec})

    def frame(ids, name="a"):
        return spark.createDataFrame(
            [(i, f"{name}{i}", date(2026, 1, 1 + i % 3)) for i in ids], schema
        )

    def content() -> dict[int, str]:
        return {r["id"]: r["name"] for r in lake.read("test.items").collect()}

    prefix = "rs/test/items/"
    assert lake.append("test.items", frame(range(6))).rows_written == 6
    assert lake.path("test.items") == "s3a://lake-rs/rs/test/items"
    assert any(k.startswith(prefix + "_delta_log/") for k in object_keys(client, "lake-rs", prefix))
    data = {k for k in object_keys(client, "lake-rs", prefix) if k.endswith(".parquet")}
    assert data and all("event_date=" in k and "_staging" not in k for k in data)
    assert content() == {i: f"a{i}" for i in range(6)}

    lake.overwrite("test.items", frame([0, 3], "b"), where=Where.eq("event_date", date(2026, 1, 1)))
    assert content() == {0: "b0", 1: "a1", 2: "a2", 3: "b3", 4: "a4", 5: "a5"}
    merged = lake.merge("test.items", frame([5, 6], "c"), ["id"])
    assert merged.rows_written >= 2
    assert content()[5] == "c5" and content()[6] == "c6" and len(content()) == 7
    keys = spark.createDataFrame([(1,), (2,)], "id long")
    lake.replace_keys("test.items", frame([1], "d"), "id", keys)
    assert content() == {0: "b0", 1: "d1", 3: "b3", 4: "a4", 5: "c5", 6: "c6"}
    before_delete = lake.version("test.items")
    assert lake.delete("test.items", Where.eq("name", "a4")).rows_deleted == 1
    assert 4 not in content()
    lake.restore("test.items", before_delete)
    assert content()[4] == "a4"
    assert lake.delete("test.items", Where.eq("name", "a4")).rows_deleted == 1

    # vacuum deletes the unreferenced objects from the bucket, leaves the active ones
    on_s3 = {k for k in object_keys(client, "lake-rs", prefix) if k.endswith(".parquet")}
    # erasure's check for files the current version no longer references sees them on S3
    stale = leftover_files(lake, "test.items")
    assert stale and {f.removeprefix("s3a://lake-rs/") for f in stale} < on_s3
    removed = lake.vacuum("test.items", retention_hours=0)
    assert leftover_files(lake, "test.items") == []
    assert removed
    left = {k for k in object_keys(client, "lake-rs", prefix) if k.endswith(".parquet")}
    active = {f.removeprefix("s3a://lake-rs/") for f in lake.active_files("test.items")}
    assert left == active and left < on_s3
    # nothing staged is left behind (S3A may leave an empty `_staging/` folder marker)
    assert not [
        k for k in object_keys(client, "lake-rs", prefix) if "/_staging/" in k and k[-1] != "/"
    ]

    grown = frame([7]).withColumn("channel", F.lit("web"))
    lake.append("test.items", grown, evolve=True)
    assert "channel" in lake.schema("test.items").fieldNames()
    assert lake.read("test.items").filter("id = 7").first()["channel"] == "web"
    assert lake.history("test.items", 1)[0]["operation"] == "append"
    assert lake.read("test.items").count() == 6
