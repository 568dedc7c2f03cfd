"""Who is working on the lake right now: exclusive leases and the running-job register.

Both live as small JSON files under `<lake.root>/_leases/` (a folder Delta never reads):

- an exclusive lease (`<name>.lease`) is claimed by creating its file atomically
  (O_CREAT | O_EXCL): of two runs started together exactly one gets it, the other stops
  before it reads or writes anything (`LeaseHeldError`). A lease whose holder died (same
  host, process gone) or that is older than its time-to-live is taken over.
- every job registers itself in `running/<run_id>.json` for its lifetime, so a zero-hour
  vacuum (erasure) keeps files younger than the oldest other running job: they may be
  another writer's uncommitted files.

On S3 (`s3://`, `s3a://`) the same files are objects and the claim is a conditional
write (`If-None-Match: *`, which S3 and S3-compatible stores honour): again exactly one
of two runs gets it. The endpoint is the one the session's hadoop-aws uses, credentials
come from the environment. On other roots (abfss://, dbfs:/) there is no atomic
create-if-absent here: leases are not enforced there and the job says so once.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Protocol

from behavior_lake.lake import LakeError
from behavior_lake.lake.files import is_object_store, s3_storage_options

log = logging.getLogger(__name__)
DIR = "_leases"


class LeaseHeldError(LakeError):
    """Another live run holds the lease."""


class _Store(Protocol):
    """Small JSON documents under `<lake.root>/_leases/`, addressed by relative name."""

    where: str

    def create_new(self, name: str, text: str) -> bool: ...
    def put(self, name: str, text: str) -> None: ...
    def read(self, name: str) -> dict: ...
    def remove(self, name: str) -> bool: ...
    def names(self, folder: str) -> list[str]: ...


class _LocalStore:
    def __init__(self, root: str) -> None:
        self.where = os.path.join(root, DIR)

    def _path(self, name: str) -> str:
        return os.path.join(self.where, name)

    def create_new(self, name: str, text: str) -> bool:
        os.makedirs(os.path.dirname(self._path(name)), exist_ok=True)
        try:
            fd = os.open(self._path(name), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        return True

    def put(self, name: str, text: str) -> None:
        os.makedirs(os.path.dirname(self._path(name)), exist_ok=True)
        with open(self._path(name), "w") as fh:
            fh.write(text)

    def read(self, name: str) -> dict:
        try:
            with open(self._path(name)) as fh:
                return json.load(fh)
        except (OSError, ValueError):
            return {}

    def remove(self, name: str) -> bool:
        try:
            os.remove(self._path(name))
        except FileNotFoundError:
            return False
        return True

    def names(self, folder: str) -> list[str]:
        path = self._path(folder)
        return sorted(os.listdir(path)) if os.path.isdir(path) else []


class _S3Store:
    def __init__(self, root: str, options: dict[str, str]) -> None:
        import boto3
        from botocore.config import Config

        bucket, _, prefix = root.split("://", 1)[1].partition("/")
        self.bucket = bucket
        self.prefix = "/".join(p for p in (prefix.strip("/"), DIR) if p)
        self.where = f"s3://{bucket}/{self.prefix}"
        style = "path" if options.get("AWS_VIRTUAL_HOSTED_STYLE_REQUEST") == "false" else "auto"
        self._s3 = boto3.client(
            "s3",
            endpoint_url=options.get("AWS_ENDPOINT_URL"),
            region_name=options.get("AWS_REGION"),
            config=Config(s3={"addressing_style": style}),
        )

    def _key(self, name: str) -> str:
        return f"{self.prefix}/{name}"

    @staticmethod
    def _code(exc: Exception) -> str:
        return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))

    def create_new(self, name: str, text: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._s3.put_object(
                Bucket=self.bucket, Key=self._key(name), Body=text.encode(), IfNoneMatch="*"
            )
        except ClientError as exc:
            # 412: the object exists; 409: another conditional write to it is in flight
            if self._code(exc) in {"PreconditionFailed", "ConditionalRequestConflict", "412"}:
                return False
            raise
        return True

    def put(self, name: str, text: str) -> None:
        self._s3.put_object(Bucket=self.bucket, Key=self._key(name), Body=text.encode())

    def read(self, name: str) -> dict:
        from botocore.exceptions import ClientError

        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=self._key(name))["Body"].read()
            return json.loads(body)
        except (ClientError, ValueError):
            return {}

    def remove(self, name: str) -> bool:
        if not self.read(name):
            return False
        self._s3.delete_object(Bucket=self.bucket, Key=self._key(name))
        return True

    def names(self, folder: str) -> list[str]:
        start = f"{self._key(folder)}/"
        pages = self._s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start)
        return sorted(o["Key"][len(start) :] for p in pages for o in p.get("Contents", []))


def _store(lake_root: str, spark=None) -> _Store | None:
    """Where the leases of the lake at `lake_root` live; None where none can be claimed
    atomically."""
    if is_object_store(lake_root):
        return _S3Store(lake_root, s3_storage_options(spark) if spark is not None else {})
    root = lake_root.removeprefix("file://")
    if "://" in root or root.startswith("dbfs:"):
        return None
    return _LocalStore(os.path.abspath(root))


def _alive(info: dict) -> bool:
    if info.get("host") != socket.gethostname():
        return True  # cannot tell: trust the time-to-live
    try:
        os.kill(int(info.get("pid", -1)), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


def _age_hours(info: dict, now: datetime) -> float:
    try:
        since = datetime.fromisoformat(info["since"])
    except (KeyError, ValueError):
        return float("inf")
    return (now - since).total_seconds() / 3600


def _info(run_id: str, **extra: str) -> dict:
    return {
        **extra,
        "run_id": run_id,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": datetime.now(UTC).isoformat(),
    }


@contextmanager
def exclusive(
    lake_root: str, name: str, run_id: str, ttl_hours: float = 12.0, *, spark=None
) -> Iterator[None]:
    """Hold lease `name` for the block, or raise LeaseHeldError naming the holder.
    `spark`: the session whose hadoop-aws settings name the S3 endpoint (S3 roots)."""
    store = _store(lake_root, spark)
    if store is None:
        log.warning("lease %s: not enforced on %s (no atomic create there)", name, lake_root)
        yield
        return
    lease = f"{name}.lease"
    for attempt in (1, 2):
        if store.create_new(lease, json.dumps(_info(run_id))):
            break
        held = store.read(lease)
        stale = not _alive(held) or _age_hours(held, datetime.now(UTC)) > ttl_hours
        if attempt == 1 and stale:
            log.warning("lease %s: taking over from a dead or expired run %s", name, held)
            store.remove(lease)
            continue
        raise LeaseHeldError(
            f"{name} is already running (run {held.get('run_id')}, pid {held.get('pid')} "
            f"on {held.get('host')}, since {held.get('since')}); this run does nothing"
        )
    try:
        yield
    finally:
        if store.read(lease).get("run_id") == run_id:
            store.remove(lease)


def dead_runs(lake_root: str, *, spark=None) -> list[dict]:
    """Register entries of runs that died without leaving it (same host, process gone):
    each is removed and returned once, so the caller can record them as killed."""
    store = _store(lake_root, spark)
    if store is None:
        return []
    out = []
    for name in store.names("running"):
        info = store.read(f"running/{name}")
        if info and info.get("host") == socket.gethostname() and not _alive(info):
            if store.remove(f"running/{name}"):
                out.append(info)
    return out


@contextmanager
def registered(lake_root: str, run_id: str, *, spark=None, **about: str) -> Iterator[None]:
    """Record this run (with `about`, e.g. job and env) in the running-job register for
    the block."""
    store = _store(lake_root, spark)
    if store is None:
        yield
        return
    entry = f"running/{run_id}.json"
    try:
        store.put(entry, json.dumps(_info(run_id, **about)))
    except Exception as exc:  # a read-only lake root must not stop a reading job
        log.warning("could not register run %s in %s: %s", run_id, store.where, exc)
    try:
        yield
    finally:
        with suppress(Exception):
            store.remove(entry)


def oldest_other_run_hours(lake_root: str, run_id: str, *, spark=None) -> float:
    """Age in hours of the oldest other live run in the register (0 when none)."""
    store = _store(lake_root, spark)
    if store is None:
        return 0.0
    now = datetime.now(UTC)
    ages = [
        _age_hours(info, now)
        for name in store.names("running")
        if name.endswith(".json") and name != f"{run_id}.json"
        for info in [store.read(f"running/{name}")]
        if info and _alive(info)
    ]
    return max([a for a in ages if a != float("inf")], default=0.0)
