"""A Spark standalone cluster on 127.0.0.1: one master and N workers, each its own JVM.

    python -m behavior_lake.standalone up [--workers 2] [--dir .cluster]   (make cluster-up)
    python -m behavior_lake.standalone down [--dir .cluster]               (make cluster-down)

The daemons are pyspark's own (`bin/spark-class org.apache.spark.deploy.master.Master`
and `...deploy.worker.Worker`), bound to 127.0.0.1 on free ports. `up` waits until every
worker has registered and writes `<dir>/cluster.json` (master URL, web UI, pids);
`down` stops the processes listed there. Logs: `<dir>/*.log`. Tests start and stop
their own cluster with `start` / `stop`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyspark

STATE = "cluster.json"


@dataclass
class Cluster:
    master_url: str
    web_url: str
    work_dir: str
    pids: list[int] = field(default_factory=list)

    def status(self) -> dict:
        with urllib.request.urlopen(f"{self.web_url}/json/", timeout=5) as resp:
            return json.load(resp)

    def alive_workers(self) -> int:
        return sum(1 for w in self.status().get("workers", []) if w.get("state") == "ALIVE")


def spark_home() -> Path:
    return Path(pyspark.__file__).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with_parent() -> None:
    """Linux: SIGTERM this child when the process that started it dies (prctl
    PR_SET_PDEATHSIG), so a killed test run leaves no daemons behind."""
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def _daemon(
    cls: str, args: list[str], log: Path, env: dict[str, str], tied: bool
) -> subprocess.Popen:
    cmd = [str(spark_home() / "bin" / "spark-class"), cls, *args]
    tie = _die_with_parent if tied and sys.platform == "linux" else None
    with log.open("ab") as out:
        return subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=tie,
        )


def start(
    work_dir: str | os.PathLike[str],
    *,
    workers: int = 2,
    cores: int = 1,
    memory: str = "2g",
    timeout: float = 120.0,
    die_with_parent: bool = False,
) -> Cluster:
    """Start the master and `workers` workers; return once all have registered.
    `die_with_parent` (tests): the daemons stop when this process dies, however."""
    work = Path(work_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.update(
        SPARK_HOME=str(spark_home()),
        SPARK_LOCAL_IP="127.0.0.1",
        SPARK_NO_DAEMONIZE="1",
        # Executors launched by the workers run this interpreter (the project's venv).
        PYSPARK_PYTHON=env.get("PYSPARK_PYTHON", sys.executable),
    )
    port, web = free_port(), free_port()
    cluster = Cluster(f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{web}", str(work))
    procs = [
        _daemon(
            "org.apache.spark.deploy.master.Master",
            ["--host", "127.0.0.1", "--port", str(port), "--webui-port", str(web)],
            work / "master.log",
            env,
            die_with_parent,
        )
    ]
    for i in range(1, workers + 1):
        wdir = work / f"worker-{i}"
        wdir.mkdir(exist_ok=True)
        args = ["--host", "127.0.0.1", "--port", str(free_port())]
        args += ["--webui-port", str(free_port()), "--cores", str(cores), "--memory", memory]
        args += ["--work-dir", str(wdir), cluster.master_url]
        procs.append(
            _daemon(
                "org.apache.spark.deploy.worker.Worker",
                args,
                work / f"worker-{i}.log",
                env,
                die_with_parent,
            )
        )
    cluster.pids = [p.pid for p in procs]
    (work / STATE).write_text(json.dumps(asdict(cluster), indent=2))
    deadline = time.monotonic() + timeout
    while True:
        dead = [p for p in procs if p.poll() is not None]
        if dead:
            stop(cluster)
            raise RuntimeError(f"a cluster daemon exited (code {dead[0].returncode}): see {work}")
        try:
            if cluster.alive_workers() == workers:
                return cluster
        except OSError:
            pass  # the master's web UI is not up yet
        if time.monotonic() > deadline:
            stop(cluster)
            raise TimeoutError(f"{workers} worker(s) not registered after {timeout:.0f} s: {work}")
        time.sleep(0.5)


def stop(cluster: Cluster, timeout: float = 20.0) -> None:
    """Stop every daemon of the cluster (TERM, then KILL after `timeout`)."""
    for pid in reversed(cluster.pids):
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + timeout
    for pid in cluster.pids:
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.2)
        else:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    state = Path(cluster.work_dir) / STATE
    state.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m behavior_lake.standalone")
    parser.add_argument("command", choices=["up", "down"])
    parser.add_argument("--dir", default=".cluster", help="state and logs (default .cluster)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cores", type=int, default=1, help="cores per worker")
    parser.add_argument("--memory", default="2g", help="memory per worker")
    args = parser.parse_args(argv)
    state = Path(args.dir) / STATE
    if args.command == "down":
        if not state.exists():
            print(f"no cluster state at {state}: nothing to stop")
            return 0
        stop(Cluster(**json.loads(state.read_text())))
        print("cluster stopped")
        return 0
    if state.exists():
        print(f"a cluster is already up ({state}); `make cluster-down` first", file=sys.stderr)
        return 1
    cluster = start(args.dir, workers=args.workers, cores=args.cores, memory=args.memory)
    print(f"master {cluster.master_url}  web UI {cluster.web_url}  logs {cluster.work_dir}")
    print(f"submit: MASTER={cluster.master_url} infra/spark-submit/submit.sh JOB [args]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
