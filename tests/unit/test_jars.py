"""The jar cache: locked files are fetched once, checked by SHA-256, and found again."""

from __future__ import annotations

import hashlib
from pathlib import Path

from behavior_lake.jars import LOCK, cached_jars, fetch, read_lock


def fake_repo(tmp_path: Path, content: bytes) -> tuple[Path, Path]:
    """A Maven-layout folder with one jar, and a lock naming it with content's checksum."""
    repo = tmp_path / "repo"
    jar = repo / "io" / "example" / "thing" / "1.0" / "thing-1.0.jar"
    jar.parent.mkdir(parents=True)
    jar.write_bytes(content)
    lock = tmp_path / "jars.lock"
    sha = hashlib.sha256(content).hexdigest()
    lock.write_text(
        f"# header\ndelta\tio.example:thing:1.0\tthing-1.0.jar\t{len(content)}\t{sha}\n"
    )
    return repo, lock


def test_fetch_checks_the_checksum_and_the_cache_is_found(tmp_path: Path) -> None:
    repo, lock = fake_repo(tmp_path, b"jar bytes")
    cache = tmp_path / "cache"
    assert cached_jars(["delta"], cache, lock) is None
    assert fetch(cache, repo.as_uri(), lock) == 0
    assert cached_jars(["delta"], cache, lock) == [str(cache / "thing-1.0.jar")]
    assert cached_jars(["s3"], cache, lock) is None  # no jar of that set locked
    assert fetch(cache, repo.as_uri(), lock) == 0  # present: nothing downloaded again


def test_a_tampered_jar_is_refused_and_not_cached(tmp_path: Path) -> None:
    repo, lock = fake_repo(tmp_path, b"jar bytes")
    (repo / "io/example/thing/1.0/thing-1.0.jar").write_bytes(b"jar byteZ")  # same size
    cache = tmp_path / "cache"
    assert fetch(cache, repo.as_uri(), lock) == 1
    assert not (cache / "thing-1.0.jar").exists() and cached_jars(["delta"], cache, lock) is None


def test_an_unreachable_repository_fails_softly(tmp_path: Path) -> None:
    _, lock = fake_repo(tmp_path, b"jar bytes")
    assert fetch(tmp_path / "cache", "http://127.0.0.1:9/none", lock) == 1


def test_the_committed_lock_pins_delta_for_spark_4_2_and_hadoop_aws(tmp_path: Path) -> None:
    jars = {j.coordinates.rsplit(":", 1)[0]: j for j in read_lock(LOCK)}
    assert jars["io.delta:delta-spark_4.2_2.13"].set == "delta"
    assert jars["io.delta:delta-storage"].set == "delta"
    import pyspark

    hadoop = next(Path(pyspark.__file__).parent.joinpath("jars").glob("hadoop-client-api-*.jar"))
    version = hadoop.stem.removeprefix("hadoop-client-api-")
    assert jars["org.apache.hadoop:hadoop-aws"].coordinates.endswith(":" + version)
    assert all(len(j.sha256) == 64 and j.size > 0 for j in jars.values())


def test_the_lock_pins_spark_s_kafka_source_and_a_broker_of_its_own() -> None:
    import pyspark

    locked = read_lock(LOCK)
    spark_side = {j.coordinates.rsplit(":", 1)[0]: j for j in locked if j.set == "kafka"}
    source = spark_side["org.apache.spark:spark-sql-kafka-0-10_2.13"]
    assert source.coordinates.endswith(":" + pyspark.__version__)
    assert "org.apache.kafka:kafka-clients" in spark_side
    # nothing pyspark ships twice on the Spark classpath (Scala, slf4j, compression codecs)
    shipped = {p.name for p in Path(pyspark.__file__).parent.joinpath("jars").glob("*.jar")}
    assert not {j.file for j in spark_side.values()} & shipped
    broker = {j.coordinates.rsplit(":", 1)[0] for j in locked if j.set == "kafka-broker"}
    assert {"org.apache.kafka:kafka_2.13", "org.apache.kafka:kafka-server"} <= broker
