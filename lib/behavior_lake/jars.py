"""The JVM jars Spark gets from a project-local cache, pinned in infra/jars/jars.lock.

`python -m behavior_lake.jars fetch` (run by `make install`) downloads every locked jar
once, checks its SHA-256 and keeps it under `.jars/`. Sessions then get `spark.jars` from
that cache: nothing is downloaded at run time. `python -m behavior_lake.jars lock`
re-resolves infra/jars/pom.xml with Maven and rewrites the lock.

Jars come in sets: `delta` (delta-spark and delta-storage) for the delta-spark engine,
`s3` (hadoop-aws and the AWS SDK bundle) for s3a:// paths, `kafka` (Structured Streaming's
Kafka source) for `activation.source: kafka`. `kafka-broker` (infra/jars/kafka-broker.pom.xml)
is not for Spark: it is the classpath of the single-node broker the tests and the activation
benchmark start on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "infra" / "jars" / "jars.lock"
POM = REPO / "infra" / "jars" / "pom.xml"
BROKER_POM = REPO / "infra" / "jars" / "kafka-broker.pom.xml"
CACHE_ENV = "BEHAVIOR_LAKE_JAR_CACHE"
MAVEN_ENV = "BEHAVIOR_LAKE_MAVEN_REPO"
CENTRAL = "https://repo1.maven.org/maven2"
HEADER = "# set\tcoordinates\tfile\tbytes\tsha256"

# Which set a resolved artifact belongs to, by groupId prefix.
SET_OF_GROUP = {
    "io.delta": "delta",
    "org.apache.hadoop": "s3",
    "software.amazon": "s3",
    "org.wildfly": "s3",
    "org.apache.spark": "kafka",
    "org.apache.kafka": "kafka",
    "org.apache.commons": "kafka",
}
SETS = ("delta", "s3", "kafka", "kafka-broker")
SPARK_SETS = ("delta", "s3", "kafka")


@dataclass(frozen=True)
class LockedJar:
    set: str
    coordinates: str  # group:artifact:version
    file: str
    size: int
    sha256: str

    @property
    def url_path(self) -> str:
        group, artifact, version = self.coordinates.split(":")
        return f"{group.replace('.', '/')}/{artifact}/{version}/{self.file}"


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or REPO / ".jars")


def read_lock(path: Path = LOCK) -> list[LockedJar]:
    jars = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        jar_set, coords, file, size, sha = line.split("\t")
        jars.append(LockedJar(jar_set, coords, file, int(size), sha))
    return jars


def _intact(path: Path, jar: LockedJar) -> bool:
    return path.is_file() and path.stat().st_size == jar.size


def cached_jars(
    sets: Iterable[str], cache: Path | None = None, lock_path: Path = LOCK
) -> list[str] | None:
    """Local paths of every locked jar in these sets, or None if any is missing."""
    cache = cache or cache_dir()
    wanted = set(sets)
    try:
        locked = [j for j in read_lock(lock_path) if j.set in wanted]
    except FileNotFoundError:
        return None
    paths = [cache / j.file for j in locked]
    if not locked or not all(_intact(p, j) for p, j in zip(paths, locked, strict=True)):
        return None
    return [str(p) for p in paths]


def missing_reason(sets: Iterable[str], cache: Path | None = None) -> str:
    cache = cache or cache_dir()
    wanted = set(sets)
    absent = [j.file for j in read_lock() if j.set in wanted and not _intact(cache / j.file, j)]
    return f"{len(absent)} locked jar(s) missing from {cache} ({', '.join(absent[:3])}...)"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(cache: Path | None = None, repo_url: str | None = None, lock_path: Path = LOCK) -> int:
    """Download the locked jars that are not cached yet; returns how many failed."""
    cache = cache or cache_dir()
    repo_url = (repo_url or os.environ.get(MAVEN_ENV) or CENTRAL).rstrip("/")
    cache.mkdir(parents=True, exist_ok=True)
    failed = 0
    for jar in read_lock(lock_path):
        target = cache / jar.file
        if _intact(target, jar):
            continue
        url = f"{repo_url}/{jar.url_path}"
        print(f">> jar {jar.coordinates} ({jar.size / 1e6:.1f} MB) from {repo_url}", flush=True)
        part = target.with_suffix(".part")
        try:
            with urllib.request.urlopen(url, timeout=60) as resp, part.open("wb") as out:
                while block := resp.read(1 << 20):
                    out.write(block)
            got = _sha256(part)
            if got != jar.sha256:
                raise ValueError(f"SHA-256 {got} differs from the lock's {jar.sha256}")
            part.replace(target)
        except (OSError, ValueError) as exc:
            part.unlink(missing_ok=True)
            print(f"   failed: {url}: {exc}", file=sys.stderr)
            failed += 1
    return failed


def _resolve(pom: Path) -> list[tuple[str, str, str, Path]]:
    """(group, artifact, version, local path) of every runtime jar the pom resolves to."""
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "deps.txt"
        subprocess.run(
            [
                "mvn", "-B", "-q", "-f", str(pom), "dependency:list",
                "-DincludeScope=runtime", "-DoutputAbsoluteArtifactFilename=true",
                f"-DoutputFile={listing}",
            ],
            check=True,
        )  # fmt: skip
        found = []
        for line in listing.read_text().splitlines():
            parts = line.strip().split(":")
            if len(parts) < 6 or parts[2] != "jar":
                continue
            group, artifact, _, version, _scope = parts[:5]
            found.append((group, artifact, version, Path(":".join(parts[5:]))))
        return found


def _spark_set(group: str, artifact: str) -> str:
    jar_set = next((s for g, s in SET_OF_GROUP.items() if group.startswith(g)), None)
    if jar_set is None:
        raise SystemExit(f"{group}:{artifact}: no jar set for this group in SET_OF_GROUP")
    return jar_set


def lock(pom: Path = POM, broker_pom: Path = BROKER_POM, out: Path = LOCK) -> list[LockedJar]:
    """Resolve the poms with Maven and write the lock (coordinates, size, SHA-256)."""
    resolved = [(_spark_set(g, a), g, a, v, p) for g, a, v, p in _resolve(pom)]
    resolved += [("kafka-broker", g, a, v, p) for g, a, v, p in _resolve(broker_pom)]
    jars = [
        LockedJar(jar_set, f"{g}:{a}:{v}", p.name, p.stat().st_size, _sha256(p))
        for jar_set, g, a, v, p in resolved
    ]
    jars.sort(key=lambda j: (SETS.index(j.set), j.coordinates))
    lines = [HEADER, *(f"{j.set}\t{j.coordinates}\t{j.file}\t{j.size}\t{j.sha256}" for j in jars)]
    out.write_text("\n".join(lines) + "\n")
    return jars


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m behavior_lake.jars", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="download the locked jars into the cache")
    sub.add_parser("lock", help="re-resolve infra/jars/pom.xml with Maven into jars.lock")
    path = sub.add_parser("path", help="print cached jars as a spark.jars value")
    path.add_argument("sets", nargs="*", default=["delta"], choices=SETS)
    args = parser.parse_args(argv)
    if args.command == "lock":
        for jar in lock():
            print(f"{jar.set:12} {jar.coordinates} {jar.size} {jar.sha256[:12]}")
        return 0
    if args.command == "path":
        jars = cached_jars(args.sets)
        if jars is None:
            print(missing_reason(args.sets), file=sys.stderr)
            return 1
        print(",".join(jars))
        return 0
    failed = fetch()
    if failed:
        print(
            f"warning: {failed} jar(s) could not be downloaded: the delta-spark engine and "
            "s3a:// paths are unavailable and lake.engine auto falls back to delta-rs "
            "(run `make jars` once Maven Central is reachable)",
            file=sys.stderr,
        )
        return 1
    print(f">> jars: all {len(read_lock())} locked jars present in {cache_dir()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
