"""A single-node Kafka broker (KRaft, broker and controller in one JVM) on 127.0.0.1.

    python -m behavior_lake.localkafka up [--dir .kafka]     (make kafka-up)
    python -m behavior_lake.localkafka down [--dir .kafka]   (make kafka-down)

The broker runs from the locked `kafka-broker` jars (infra/jars/kafka-broker.pom.xml, fetched
by `make jars`) with the machine's Java; no Kafka distribution is installed. `up` formats a
fresh log directory (`kafka.tools.StorageTool format`), starts `kafka.Kafka` and waits until
the broker answers a metadata request, then writes `<dir>/kafka.json` (bootstrap servers,
pid). The activation tests and `make bench-activation` start and stop their own broker with
`start` / `stop`. For local trials of `activation.source: kafka`, not for production.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from behavior_lake.jars import cached_jars, missing_reason
from behavior_lake.standalone import _die_with_parent, free_port

STATE = "kafka.json"
SET = "kafka-broker"


@dataclass
class Broker:
    bootstrap: str
    work_dir: str
    pid: int


def _java() -> str:
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java:
        raise RuntimeError("java is not on PATH and JAVA_HOME is unset: the broker needs Java 17")
    return java


def _properties(work: Path, port: int, controller: int) -> Path:
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@127.0.0.1:{controller}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(work / "data"),
        "num.partitions": "1",
        "offsets.topic.replication.factor": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "true",
    }
    path = work / "server.properties"
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    return path


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def start(
    work_dir: str | os.PathLike[str],
    *,
    heap: str = "512m",
    timeout: float = 90.0,
    die_with_parent: bool = False,
) -> Broker:
    """Format a new log directory under `work_dir`, start the broker, wait until it serves."""
    jars = cached_jars([SET])
    if jars is None:
        raise RuntimeError(f"the Kafka broker cannot start: {missing_reason([SET])}; run make jars")
    work = Path(work_dir).resolve()
    shutil.rmtree(work / "data", ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    port, controller = free_port(), free_port()
    props = _properties(work, port, controller)
    java = [_java(), f"-Xmx{heap}", "-cp", os.pathsep.join(jars)]
    java += ["-Dorg.slf4j.simpleLogger.defaultLogLevel=warn"]
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    log = work / "broker.log"
    with log.open("ab") as out:
        subprocess.run(
            [*java, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(props)],
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=timeout,
        )
        tie = _die_with_parent if die_with_parent and sys.platform == "linux" else None
        proc = subprocess.Popen(
            [*java, "kafka.Kafka", str(props)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=tie,
        )
    broker = Broker(f"127.0.0.1:{port}", str(work), proc.pid)
    (work / STATE).write_text(json.dumps(asdict(broker), indent=2))
    deadline = time.monotonic() + timeout
    while not _reachable(port):
        if proc.poll() is not None:
            raise RuntimeError(f"the Kafka broker exited (code {proc.returncode}): see {log}")
        if time.monotonic() > deadline:
            stop(broker)
            raise TimeoutError(f"the Kafka broker did not listen within {timeout:.0f} s: {log}")
        time.sleep(0.3)
    return broker


def ensure_topics(spark, bootstrap: str, names: list[str], timeout: float = 30.0) -> None:
    """Create the topics (one partition; existing ones are kept) with the Kafka admin
    client Spark's Kafka jars bring, and wait until the broker describes them all: a query
    subscribing to a topic the broker has just created can fail with
    UnknownTopicOrPartitionException."""
    jvm = spark.sparkContext._jvm
    admin_pkg = jvm.org.apache.kafka.clients.admin
    props = jvm.java.util.Properties()
    props.put("bootstrap.servers", bootstrap)
    admin = admin_pkg.Admin.create(props)
    try:
        empty = jvm.java.util.Optional.empty()
        topics = jvm.java.util.ArrayList()
        for name in names:
            topics.add(admin_pkg.NewTopic(name, empty, empty))
        try:
            admin.createTopics(topics).all().get()
        except Exception as exc:  # TopicExistsException: fine
            if "TopicExists" not in str(exc):
                raise
        wanted = jvm.java.util.ArrayList()
        for name in names:
            wanted.add(name)
        deadline = time.monotonic() + timeout
        while True:
            try:
                admin.describeTopics(wanted).allTopicNames().get()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
    finally:
        admin.close()


def stop(broker: Broker, timeout: float = 20.0) -> None:
    """Stop the broker (TERM, then KILL after `timeout`)."""
    from behavior_lake.standalone import Cluster
    from behavior_lake.standalone import stop as stop_daemons

    stop_daemons(Cluster("", "", broker.work_dir, [broker.pid]), timeout)
    (Path(broker.work_dir) / STATE).unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m behavior_lake.localkafka")
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--dir", default=".kafka", help="state, data and log (default .kafka)")
    args = parser.parse_args(argv)
    state = Path(args.dir) / STATE
    if args.command == "down":
        if not state.exists():
            print(f"no broker state at {state}: nothing to stop")
            return 0
        stop(Broker(**json.loads(state.read_text())))
        print("kafka broker stopped")
        return 0
    if state.exists():
        print(f"a broker is already up ({state}); `make kafka-down` first", file=sys.stderr)
        return 1
    broker = start(args.dir)
    print(f"kafka bootstrap {broker.bootstrap}  log {broker.work_dir}/broker.log")
    print(
        f"stream from it: --set activation.source=kafka --set activation.kafka.bootstrap={broker.bootstrap}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
