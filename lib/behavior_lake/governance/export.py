"""Subject access export (JSON bundle + manifest, local or S3) and k-anonymous reports."""

from __future__ import annotations

import io
import json
import logging
import os
import zipfile
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from behavior_lake.config import Settings
from behavior_lake.contracts.gold import USER_FEATURES
from behavior_lake.contracts.ml import USER_SEGMENTS
from behavior_lake.contracts.silver import EVENTS
from behavior_lake.governance.erasure import Subject, check_subject_id, resolve, subject_rows
from behavior_lake.governance.export_ledger import record_export, s3_client, subject_sha
from behavior_lake.lake import Lake
from behavior_lake.privacy.pseudonym import user_person_id

log = logging.getLogger(__name__)


def _plain(v: Any) -> Any:
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    if isinstance(v, Decimal):
        return str(v)
    if isinstance(v, (bytes, bytearray)):
        return v.hex()
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if hasattr(v, "asDict"):
        return _plain(v.asDict(recursive=True))
    return v


@dataclass
class ExportResult:
    location: str
    manifest: dict
    presigned_url: str | None = None


def subject_bundle(lake: Lake, settings: Settings, user_id: str) -> tuple[bytes, dict]:
    """A zip: one JSON file per table with rows about the subject, plus manifest.json."""
    pk = settings.privacy.pseudonym_key
    check_subject_id(user_id, "--user-id")
    pid = lake.spark.range(1).select(user_person_id(F.lit(user_id), pk)).first()[0]
    req = {"request_id": "export", "person_id": pid, "anonymous_id_hash": None,
           "user_id": user_id, "anonymous_id": None}  # fmt: skip
    subj: Subject = resolve(lake, settings, req)
    tables: dict[str, int] = {}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, df in sorted(subject_rows(lake, settings, subj).items()):
            rows = [_plain(r.asDict(recursive=True)) for r in df.collect()]  # one person
            if not rows:
                continue
            tables[name] = len(rows)
            z.writestr(f"{name}.json", json.dumps(rows, indent=1, default=str))
            log.info("export: %s: %d row(s)", name, len(rows))
        manifest = {
            "subject": subject_sha(pid),
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "tables": tables,
            "total_rows": sum(tables.values()),
            "note": "rows about the subject in every layer of the lake; raw PII fields of "
            "bronze are stored encrypted and exported as stored",
        }
        z.writestr("manifest.json", json.dumps(manifest, indent=2))
    return buf.getvalue(), manifest


def export_subject(lake: Lake, settings: Settings, user_id: str, out: str) -> ExportResult:
    data, manifest = subject_bundle(lake, settings, user_id)
    rows = manifest["total_rows"]
    name = f"subject-{manifest['subject'][:16]}-{datetime.now(UTC):%Y%m%dT%H%M%S}.zip"
    if out.startswith("s3://"):
        bucket, _, prefix = out.removeprefix("s3://").partition("/")
        if not bucket:
            raise ValueError(f"--out {out!r}: expected s3://bucket[/prefix]")
        key = f"{prefix.rstrip('/')}/{name}" if prefix else name
        client = s3_client(settings)
        client.put_object(Bucket=bucket, Key=key, Body=data, ContentType="application/zip")
        url = client.generate_presigned_url(
            "get_object",
            Params={"Bucket": bucket, "Key": key},
            ExpiresIn=settings.governance.presign_seconds,
        )
        record_export(lake, settings, f"s3://{bucket}/{key}", manifest["subject"], rows)
        return ExportResult(f"s3://{bucket}/{key}", manifest, url)
    path = Path(out).resolve() / name
    path.parent.mkdir(parents=True, exist_ok=True)
    # the subject's data: readable by the owner only, never world-readable
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(path, 0o600)
    record_export(lake, settings, str(path), manifest["subject"], rows)
    return ExportResult(str(path), manifest)


# ----------------------------------------------------------------------------- k-anonymity


def country_of(locale: F.Column) -> F.Column:
    """`en-US` / `en_US` -> `US`; anything else -> `unknown`."""
    c = F.upper(F.regexp_extract(locale, r"^[A-Za-z]{2,3}[-_]([A-Za-z]{2})$", 1))
    return F.when(c != "", c).otherwise(F.lit("unknown"))


def segment_country_report(lake: Lake, as_of: date | None = None) -> DataFrame:
    """Per segment and country at a snapshot: persons and their behaviour (person-level
    rows joined, then aggregated)."""
    seg = lake.read(USER_SEGMENTS.name)
    day = as_of or seg.agg(F.max("as_of_date")).first()[0]
    if day is None:
        raise ValueError("gold.user_segments is empty: run assign_segments first")
    seg = seg.filter(F.col("as_of_date") == F.lit(day))
    feats = lake.read(USER_FEATURES).filter(F.col("as_of_date") == F.lit(day))
    locale = (
        lake.read(EVENTS)
        .filter(F.col("event_date") < F.lit(day))
        .groupBy("person_id")
        .agg(F.max_by(F.col("context")["locale"], F.col("event_ts")).alias("locale"))
    )
    rows = (
        seg.join(feats, ["person_id", "as_of_date"])
        .join(locale, "person_id", "left")
        .withColumn("country", country_of(F.col("locale")))
    )
    return rows.groupBy("as_of_date", "segment_name", "country").agg(
        F.countDistinct("person_id").alias("persons"),
        F.round(F.avg("events_30d"), 2).alias("avg_events_30d"),
        F.round(F.avg("sessions_30d"), 2).alias("avg_sessions_30d"),
        F.sum("orders_30d").alias("orders_30d"),
        F.round(F.sum("revenue_30d"), 2).alias("revenue_30d"),
    )


def k_anonymous(report: DataFrame, k: int, persons_col: str = "persons") -> tuple[DataFrame, int]:
    """Drop every group with fewer than k distinct persons; returns (kept, suppressed)."""
    if k < 1:
        raise ValueError(f"governance.k_anonymity: expected >= 1, got {k}")
    report = report.cache()
    suppressed = report.filter(F.col(persons_col) < k).count()
    return report.filter(F.col(persons_col) >= k), suppressed
