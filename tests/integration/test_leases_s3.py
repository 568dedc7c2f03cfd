"""Leases and the running-job register on a lake root on S3 (a local S3 server on
127.0.0.1): the claim is a conditional write, so of two runs racing exactly one wins."""

from __future__ import annotations

import json
import os
import threading

import pytest
from pyspark.sql import SparkSession

from behavior_lake.ops import lease

ROOT = "s3a://leases/lakehouse"


@pytest.fixture
def s3_root(spark: SparkSession, s3_server: str):
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    client.create_bucket(Bucket="leases")
    hconf = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[attr-defined]
    settings = {"fs.s3a.endpoint": s3_server, "fs.s3a.path.style.access": "true"}
    saved = {k: hconf.get(k) for k in settings}
    for k, v in settings.items():
        hconf.set(k, v)
    yield client
    for k, v in saved.items():
        if v is None:
            hconf.unset(k)
        else:
            hconf.set(k, v)


def keys(client) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket="leases").get("Contents", []))


def test_exclusive_lease_on_s3(spark: SparkSession, s3_root) -> None:
    client = s3_root
    with lease.exclusive(ROOT, "bronze_ingest", "run-a", spark=spark):
        assert keys(client) == ["lakehouse/_leases/bronze_ingest.lease"]
        with pytest.raises(lease.LeaseHeldError, match="run run-a"):
            with lease.exclusive(ROOT, "bronze_ingest", "run-b", spark=spark):
                pytest.fail("a second holder entered the block")
        # another lease name is independent (control)
        with lease.exclusive(ROOT, "other_job", "run-b", spark=spark):
            pass
    assert keys(client) == []  # released
    entered = []
    with lease.exclusive(ROOT, "bronze_ingest", "run-c", spark=spark):
        entered.append("run-c")
    assert entered == ["run-c"]
    # a lease left by a process that died on this host is taken over
    dead = {"run_id": "dead", "pid": 2**22 + 17, "host": os.uname()[1], "since": "2026-12-01T00:00:00+00:00"}  # fmt: skip
    client.put_object(
        Bucket="leases", Key="lakehouse/_leases/bronze_ingest.lease", Body=json.dumps(dead)
    )
    with lease.exclusive(ROOT, "bronze_ingest", "run-d", spark=spark):
        entered.append("run-d")
    assert entered == ["run-c", "run-d"] and keys(client) == []


def test_of_runs_racing_for_an_s3_lease_exactly_one_wins(spark: SparkSession, s3_root) -> None:
    store = lease._store(ROOT, spark)
    for round_ in range(5):
        barrier = threading.Barrier(4)
        won: list[int] = []

        def claim(i: int, name: str, barrier: threading.Barrier, won: list[int]) -> None:
            barrier.wait()
            if store.create_new(name, json.dumps({"run_id": i})):
                won.append(i)

        args = (f"race-{round_}.lease", barrier, won)
        threads = [threading.Thread(target=claim, args=(i, *args)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert len(won) == 1, won
        assert store.read(f"race-{round_}.lease") == {"run_id": won[0]}


def test_running_register_on_s3(spark: SparkSession, s3_root) -> None:
    client = s3_root
    assert lease.oldest_other_run_hours(ROOT, "me", spark=spark) == 0.0
    with lease.registered(ROOT, "other", spark=spark, job="silver_build"):
        assert keys(client) == ["lakehouse/_leases/running/other.json"]
        assert lease.oldest_other_run_hours(ROOT, "me", spark=spark) >= 0.0
        assert lease.oldest_other_run_hours(ROOT, "other", spark=spark) == 0.0
        old = {"run_id": "old", "pid": os.getpid(), "host": os.uname()[1],
               "since": "2026-12-01T00:00:00+00:00", "job": "gold_build"}  # fmt: skip
        client.put_object(
            Bucket="leases", Key="lakehouse/_leases/running/old.json", Body=json.dumps(old)
        )
        assert lease.oldest_other_run_hours(ROOT, "me", spark=spark) > 24
        assert lease.dead_runs(ROOT, spark=spark) == []  # both alive (this process)
        gone = {**old, "run_id": "gone", "pid": 2**22 + 17}
        client.put_object(
            Bucket="leases", Key="lakehouse/_leases/running/gone.json", Body=json.dumps(gone)
        )
        assert [r["run_id"] for r in lease.dead_runs(ROOT, spark=spark)] == ["gone"]
        assert lease.dead_runs(ROOT, spark=spark) == []  # reported once
    assert keys(client) == ["lakehouse/_leases/running/old.json"]
