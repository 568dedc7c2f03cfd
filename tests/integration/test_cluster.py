"""The pipeline on a real Spark standalone cluster (a master and two worker JVMs on
127.0.0.1), submitted with infra/spark-submit/submit.sh under --env cluster: its tables
equal the local-mode demo lake's, row for row."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from behavior_lake import standalone
from behavior_lake.lake import make_lake
from tests.conftest import REPO
from tests.integration.conftest import TEST_ENCRYPTION_KEY, TEST_PSEUDONYM_KEY, Demo
from tests.integration.parity import table_differences

# Starting the cluster takes seconds (make test); the pipeline on it is an end-to-end run
# (make test-e2e).


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[standalone.Cluster]:
    c = standalone.start(
        tmp_path_factory.mktemp("cluster"), workers=2, cores=1, memory="2g", die_with_parent=True
    )
    yield c
    standalone.stop(c)


def submit(cluster: standalone.Cluster, env: dict[str, str], job: str, *args: str):
    return subprocess.run(
        ["bash", str(REPO / "infra" / "spark-submit" / "submit.sh"), job, *args],
        env={**os.environ, "MASTER": cluster.master_url, **env},
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_standalone_cluster_has_two_workers_on_loopback(cluster: standalone.Cluster) -> None:
    status = cluster.status()
    workers = [w for w in status["workers"] if w["state"] == "ALIVE"]
    assert len(workers) == 2
    assert all(w["host"] == "127.0.0.1" for w in workers)
    assert cluster.master_url.startswith("spark://127.0.0.1:")


@pytest.mark.slow
@pytest.mark.e2e
def test_pipeline_on_the_cluster_equals_local_mode(
    spark: SparkSession,
    cluster: standalone.Cluster,
    demo: Demo,
    default_engine: str,
    tmp_path: Path,
) -> None:
    if default_engine != "delta-spark":
        pytest.skip("submit.sh ships the Delta jars from the cache: `make jars`")
    lake_root = tmp_path / "lakehouse"
    env = {
        "BEHAVIOR_LAKE_ROOT": str(lake_root),
        "BEHAVIOR_LAKE_LANDING": demo.settings.landing.root,
        "BEHAVIOR_LAKE_TRUTH": demo.settings.landing.truth_root,
        "BEHAVIOR_LAKE_PSEUDONYM_KEY": TEST_PSEUDONYM_KEY,
        "BEHAVIOR_LAKE_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY,
        "PYTHON": sys.executable,
        "EXECUTOR_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
        # a 2-core cluster: Delta's snapshot (50) and vacuum-listing (10000) task counts
        # are sized for large clusters
        "EXTRA_SUBMIT_ARGS": " ".join(
            [
                "--driver-memory 2g",
                "--conf spark.executor.memory=1g",
                "--conf spark.ui.enabled=false",
                "--conf spark.databricks.delta.snapshotPartitions=2",
                "--conf spark.sql.sources.parallelPartitionDiscovery.parallelism=4",
            ]
        ),
    }
    small = ["--conf", "spark.shuffle_partitions=2", "--conf", "spark.ui_enabled=false"]
    # The production DAG's first three tasks in one application, gold_features building
    # the demo lake's snapshots (its DAG arguments overridden like any config key).
    tasks = [x for t in ("bronze_ingest", "silver_events", "gold_features") for x in ("--only", t)]
    as_of = json.dumps([a for d in demo.as_of_dates for a in ("--as-of", d.isoformat())])
    gold_args = ["--conf", f"pipeline.tasks.gold_features.args={as_of}"]
    done = submit(cluster, env, "run_pipeline", *tasks, *small, *gold_args)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "--env cluster" in done.stderr  # submit.sh traces the spark-submit line
    # The work ran on the cluster: both applications completed on the master, and each
    # had executors on both workers (their work folders hold the shipped Delta jar).
    apps = cluster.status()["completedapps"]
    assert len(apps) == 1 and apps[0]["state"] == "FINISHED"
    for app in apps:
        shipped = list(Path(cluster.work_dir).glob(f"worker-*/{app['id']}/*/delta-spark_*.jar"))
        assert len({p.parts[-4] for p in shipped}) == 2
    lake = make_lake(spark, str(lake_root), "delta-spark", demo.lake.specs)
    assert lake.read("silver.events").count() == demo.lake.read("silver.events").count()
    built = {
        r[0] for r in lake.read("gold.user_features").select("as_of_date").distinct().collect()
    }
    assert built == set(demo.as_of_dates)
    assert table_differences(demo.lake, lake, demo.settings.privacy.encryption_key) == {}
