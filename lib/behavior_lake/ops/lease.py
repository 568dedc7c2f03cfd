"""Who is working on the lake right now: exclusive leases and the running-job register.

Both live as small JSON files under `<lake.root>/_leases/` (a folder Delta never reads):

- an exclusive lease (`<name>.lease`) is claimed by creating its file atomically
  (O_CREAT | O_EXCL): of two runs started together exactly one gets it, the other stops
  before it reads or writes anything (`LeaseHeldError`). A lease whose holder died (same
  host, process gone) or that is older than its time-to-live is taken over.
- every job registers itself in `running/<run_id>.json` for its lifetime, so a zero-hour
  vacuum (erasure) keeps files younger than the oldest other running job: they may be
  another writer's uncommitted files.

On a root that is not a local path (s3a://, abfss://, dbfs:/) there is no atomic
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

from behavior_lake.lake import LakeError

log = logging.getLogger(__name__)
DIR = "_leases"


class LeaseHeldError(LakeError):
    """Another live run holds the lease."""


def _local_root(lake_root: str) -> str | None:
    root = lake_root.removeprefix("file://")
    return None if "://" in root or root.startswith("dbfs:") else os.path.abspath(root)


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


def _read(path: str) -> dict:
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def _info(run_id: str, **extra: str) -> dict:
    return {
        **extra,
        "run_id": run_id,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": datetime.now(UTC).isoformat(),
    }


@contextmanager
def exclusive(lake_root: str, name: str, run_id: str, ttl_hours: float = 12.0) -> Iterator[None]:
    """Hold lease `name` for the block, or raise LeaseHeldError naming the holder."""
    root = _local_root(lake_root)
    if root is None:
        log.warning("lease %s: not enforced on %s (no atomic create there)", name, lake_root)
        yield
        return
    os.makedirs(os.path.join(root, DIR), exist_ok=True)
    path = os.path.join(root, DIR, f"{name}.lease")
    mine = json.dumps(_info(run_id))
    for attempt in (1, 2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            held = _read(path)
            stale = not _alive(held) or _age_hours(held, datetime.now(UTC)) > ttl_hours
            if attempt == 1 and stale:
                log.warning("lease %s: taking over from a dead or expired run %s", name, held)
                with suppress(FileNotFoundError):
                    os.remove(path)
                continue
            raise LeaseHeldError(
                f"{name} is already running (run {held.get('run_id')}, pid {held.get('pid')} "
                f"on {held.get('host')}, since {held.get('since')}); this run does nothing"
            ) from None
        with os.fdopen(fd, "w") as fh:
            fh.write(mine)
        break
    try:
        yield
    finally:
        if _read(path).get("run_id") == run_id:
            with suppress(FileNotFoundError):
                os.remove(path)


def dead_runs(lake_root: str) -> list[dict]:
    """Register entries of runs that died without leaving it (same host, process gone):
    each is removed and returned once, so the caller can record them as killed."""
    root = _local_root(lake_root)
    folder = os.path.join(root, DIR, "running") if root else None
    if not folder or not os.path.isdir(folder):
        return []
    out = []
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        info = _read(path)
        if info and info.get("host") == socket.gethostname() and not _alive(info):
            with suppress(FileNotFoundError):
                os.remove(path)
                out.append(info)
    return out


@contextmanager
def registered(lake_root: str, run_id: str, **about: str) -> Iterator[None]:
    """Record this run (with `about`, e.g. job and env) in the running-job register for
    the block."""
    root = _local_root(lake_root)
    if root is None:
        yield
        return
    folder = os.path.join(root, DIR, "running")
    path = os.path.join(folder, f"{run_id}.json")
    try:
        os.makedirs(folder, exist_ok=True)
        with open(path, "w") as fh:
            json.dump(_info(run_id, **about), fh)
    except OSError as exc:  # a read-only lake root must not stop a reading job
        log.warning("could not register run %s in %s: %s", run_id, folder, exc)
    try:
        yield
    finally:
        with suppress(FileNotFoundError):
            os.remove(path)


def oldest_other_run_hours(lake_root: str, run_id: str) -> float:
    """Age in hours of the oldest other live run in the register (0 when none)."""
    root = _local_root(lake_root)
    folder = os.path.join(root, DIR, "running") if root else None
    if not folder or not os.path.isdir(folder):
        return 0.0
    now = datetime.now(UTC)
    ages = [
        _age_hours(info, now)
        for name in os.listdir(folder)
        if name.endswith(".json") and name != f"{run_id}.json"
        for info in [_read(os.path.join(folder, name))]
        if info and _alive(info)
    ]
    return max([a for a in ages if a != float("inf")], default=0.0)
