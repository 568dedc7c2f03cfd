"""The ledger of subject access exports (`ops.subject_exports`) and their deletion.

An export is a copy of everything the lake holds about a person, written outside the
lake (a folder or an S3 prefix). Every export is recorded with the SHA-256 of the
subject's pseudonym, so that erasing the subject also deletes the copies handed out,
and `enforce_retention` deletes every copy older than `governance.export_keep_days`.
"""

from __future__ import annotations

import hashlib
import logging
import os
from datetime import UTC, datetime, timedelta

from pyspark.sql import functions as F

from behavior_lake.config import Settings
from behavior_lake.contracts.codes import ExportDeletion, ExportStatus
from behavior_lake.contracts.governance import SUBJECT_EXPORTS, SUPPRESSION
from behavior_lake.lake import Lake

log = logging.getLogger(__name__)


def subject_sha(person_id: str) -> str:
    """How the ledger (and ops.erasure_requests) name a person: sha256 of the pseudonym."""
    return hashlib.sha256(person_id.encode()).hexdigest()


def s3_client(settings: Settings):
    import boto3

    g = settings.governance
    return boto3.client("s3", endpoint_url=g.export_endpoint_url, region_name=g.export_region)


def record_export(lake: Lake, settings: Settings, location: str, sha: str, total_rows: int) -> None:
    """One ledger row for an export just written."""
    now = datetime.now(UTC).replace(tzinfo=None)
    keep = timedelta(days=settings.governance.export_keep_days)
    row = (
        location.rsplit("/", 1)[-1],
        sha,
        location,
        int(total_rows),
        now,
        now + keep,
        ExportStatus.AVAILABLE.value,
        None,
        None,
    )
    lake.ensure(SUBJECT_EXPORTS.name)
    lake.merge(
        SUBJECT_EXPORTS.name,
        lake.spark.createDataFrame([row], SUBJECT_EXPORTS.schema),
        ["export_id"],
    )


def remove_file(settings: Settings, location: str, client=None) -> bool:
    """Delete one export file; False when it was already gone."""
    if location.startswith("s3://"):
        bucket, _, key = location.removeprefix("s3://").partition("/")
        client = client or s3_client(settings)
        try:
            client.head_object(Bucket=bucket, Key=key)
        except client.exceptions.ClientError as exc:
            # only a missing object is "already gone"; a refused one (403) is an error
            if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                raise
            return False
        client.delete_object(Bucket=bucket, Key=key)
        return True
    try:
        os.remove(location)
    except FileNotFoundError:
        return False
    return True


class ExportDeletionError(RuntimeError):
    """Some export files could not be deleted (their rows stay `available`: the next
    erase_subjects or enforce_retention run tries again)."""


def delete_exports(
    lake: Lake,
    settings: Settings,
    reason: ExportDeletion,
    *,
    expired_before: datetime | None = None,
    dry_run: bool = False,
) -> int:
    """Delete the available exports of every erased subject (reason erasure: the
    subject's sha in ops.erasure_suppression) or those that expired before a time
    (reason expired); mark their ledger rows. Returns how many (with `dry_run`: how
    many would go, nothing changed). Raises ExportDeletionError after marking the others
    when a file cannot be deleted."""
    if not lake.exists(SUBJECT_EXPORTS.name):
        return 0
    ledger = lake.read(SUBJECT_EXPORTS.name).filter(F.col("status") == ExportStatus.AVAILABLE.value)
    if reason is ExportDeletion.ERASURE:
        if not lake.exists(SUPPRESSION.name):
            return 0
        erased = lake.read(SUPPRESSION.name).select(F.col("id_sha").alias("subject_sha"))
        ledger = ledger.join(erased.distinct(), "subject_sha", "left_semi")
    else:
        ledger = ledger.filter(F.col("expires_at") < F.lit(expired_before))
    rows = ledger.collect()  # a few per subject
    if not rows or dry_run:
        return len(rows)
    done, failed = [], []
    for r in rows:
        try:
            present = remove_file(settings, r.location)
        except Exception as exc:  # an unreachable store must not hide the others
            failed.append(f"{r.location}: {str(exc).splitlines()[0][:200]}")
            continue
        done.append(r)
        log.info("subject export %s deleted (%s%s)", r.export_id, reason.value,
                 "" if present else ", file already gone")  # fmt: skip
    if done:
        now = datetime.now(UTC).replace(tzinfo=None)
        change = {
            "status": ExportStatus.DELETED.value,
            "deleted_at": now,
            "deleted_reason": reason.value,
        }
        names = SUBJECT_EXPORTS.schema.fieldNames()
        marked = [tuple({**r.asDict(), **change}[n] for n in names) for r in done]
        frame = lake.spark.createDataFrame(marked, SUBJECT_EXPORTS.schema)
        lake.merge(SUBJECT_EXPORTS.name, frame, ["export_id"])
    if failed:
        raise ExportDeletionError(
            f"{len(failed)} of {len(rows)} subject export(s) could not be deleted (kept as "
            f"available, retried by the next run): {failed[0]}"
        )
    return len(done)
