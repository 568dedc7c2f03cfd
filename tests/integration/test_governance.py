"""Governance: retention boundaries, dry run, reruns; erasure across every layer."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from behavior_lake.bronze.ingest import ingest
from behavior_lake.config import RetentionRule, RetentionSettings
from behavior_lake.contracts.gold import DAILY_KPIS
from behavior_lake.contracts.ops import SLA_BREACHES
from behavior_lake.governance.retention import (
    RetentionGuardError,
    enforce_retention,
    reference_date,
)
from behavior_lake.lake import Lake
from behavior_lake.privacy.pseudonym import user_person_id
from tests.conftest import lake_test_settings
from tests.integration.conftest import Demo

TODAY = date(2026, 6, 30)
pytestmark = pytest.mark.slow


def kpi_rows(days: list[date]) -> list[tuple]:
    from decimal import Decimal

    return [(d, "all", 1, 1, 1, 1.0, 1, 1.0, 0.0, 0, Decimal("0.00"), True, True) for d in days]


@pytest.fixture
def retained(spark: SparkSession, lake: Lake, lake_root: str):
    """Both engines: retention deletes and vacuums on each."""
    days = [TODAY - timedelta(days=n) for n in (0, 29, 30, 31, 45)]
    lake.append(DAILY_KPIS.name, spark.createDataFrame(kpi_rows(days), DAILY_KPIS.schema))
    stamps = [datetime(2026, 6, 30, 0, 0) - timedelta(days=n) for n in (10, 30)]
    stamps.append(datetime(2026, 5, 30, 23, 59, 59))  # one second before the cutoff day
    rows = [("p", "t", "duration", 1.0, 1.0, "x", ts) for ts in stamps]
    lake.append(SLA_BREACHES.name, spark.createDataFrame(rows, SLA_BREACHES.schema))
    s = lake_test_settings(lake_root)
    rules = {
        DAILY_KPIS.name: RetentionRule(days=30, column="kpi_date"),
        SLA_BREACHES.name: RetentionRule(days=30, column="detected_at"),
        "gold.not_there": RetentionRule(days=5, column="x"),
    }
    s = replace(
        s, retention=RetentionSettings(reference="now", vacuum_retention_hours=0, tables=rules)
    )
    return lake, s


def parquet_files(root: str) -> list[str]:
    return [
        os.path.join(d, f)
        for d, dirs, files in os.walk(root)
        for f in files
        if f.endswith(".parquet") and "_delta_log" not in d
    ]


def test_retention_boundaries_dry_run_and_rerun(retained) -> None:
    lake, s = retained
    v_kpi = lake.version(DAILY_KPIS.name)
    dry = {t.table: t for t in enforce_retention(lake, s, "r0", dry_run=True, today=TODAY)}
    assert dry[DAILY_KPIS.name].rows_deleted == 2 and dry[SLA_BREACHES.name].rows_deleted == 1
    assert lake.version(DAILY_KPIS.name) == v_kpi  # dry run changed nothing
    assert not lake.exists("ops.retention_runs")
    files_before = len(parquet_files(lake.path(DAILY_KPIS.name)))
    res = {t.table: t for t in enforce_retention(lake, s, "r1", today=TODAY)}
    kept = sorted(r[0] for r in lake.read(DAILY_KPIS.name).select("kpi_date").collect())
    cutoff = TODAY - timedelta(days=30)
    assert kept == [cutoff, TODAY - timedelta(days=29), TODAY]  # the cutoff day itself stays
    assert res[DAILY_KPIS.name].metadata_only is True  # kpi_date partitions the table
    assert res[DAILY_KPIS.name].files_removed >= 1 and res[DAILY_KPIS.name].bytes_freed > 0
    assert len(parquet_files(lake.path(DAILY_KPIS.name))) < files_before
    left = [r[0] for r in lake.read(SLA_BREACHES.name).select("detected_at").collect()]
    assert len(left) == 2 and min(left).date() >= cutoff
    runs = lake.read("ops.retention_runs").collect()
    assert {r.table_name: r.rows_deleted for r in runs} == {
        DAILY_KPIS.name: 2,
        SLA_BREACHES.name: 1,
    }
    again = enforce_retention(lake, s, "r2", today=TODAY)
    assert [(t.table, t.rows_deleted, t.files_removed) for t in again] == [
        (DAILY_KPIS.name, 0, 0),
        (SLA_BREACHES.name, 0, 0),
    ]


def test_retention_config_errors_name_the_key(retained) -> None:
    lake, s = retained
    bad = replace(s.retention, tables={DAILY_KPIS.name: RetentionRule(days=30, column="platform")})
    with pytest.raises(ValueError, match=r"retention.tables.gold.daily_kpis.column: platform is"):
        enforce_retention(lake, replace(s, retention=bad), "r", today=TODAY)


# ----------------------------------------------------------------------------- erasure


def subjects(demo: Demo) -> list[dict]:
    """Identified demo users (truth) whose pseudonym has silver events and features."""
    lake, s = demo.lake, demo.settings
    path = Path(s.landing.truth_root) / "users" / "users.jsonl"
    users = {u["user_id"]: u for u in map(json.loads, path.read_text().splitlines())}
    ids = lake.spark.createDataFrame([(u,) for u in sorted(users)], "user_id string")
    ids = ids.withColumn("person_id", user_person_id(F.col("user_id"), s.privacy.pseudonym_key))
    have = ids.join(lake.read("silver.events").select("person_id").distinct(), "person_id")
    have = have.join(lake.read("gold.user_features").select("person_id").distinct(), "person_id")
    return [users[r.user_id] for r in have.orderBy("user_id").collect()]


def files_mentioning(root: str, needles: list[str]) -> list[str]:
    """Every file under the lake root holding a needle: string cells of parquet data
    files, and the raw bytes of every other file (Delta logs, checkpoints' JSON)."""
    hits = []
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            if not f.endswith(".parquet"):
                data = Path(p).read_bytes()
                if any(n.encode() in data for n in needles):
                    hits.append(p)
    for f in parquet_files(root):
        table = pq.read_table(f)
        for col in table.columns:
            if str(col.type) not in ("string", "large_string"):
                continue
            for v in col.to_pylist():
                if v and any(n in v for n in needles):
                    hits.append(f)
                    break
            else:
                continue
            break
    return hits


def test_subject_export_to_s3_compatible_store(demo: Demo, s3_server: str, capsys) -> None:
    import io
    import urllib.request
    import zipfile

    import boto3

    from behavior_lake.jobs import export_subject

    lake, s = demo.lake, demo.settings
    u = subjects(demo)[1]
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket="exports")
    args = demo.job_args(
        "--conf", f"governance.export_endpoint_url={s3_server}",
        "--user-id", u["user_id"], "--out", "s3://exports/subjects",
    )  # fmt: skip
    assert export_subject.cli(args) == 0
    out = capsys.readouterr().out
    url = next(
        line.split("presigned URL: ")[1] for line in out.splitlines() if "presigned URL" in line
    )
    data = urllib.request.urlopen(url, timeout=10).read()  # the link works without credentials
    z = zipfile.ZipFile(io.BytesIO(data))
    manifest = json.loads(z.read("manifest.json"))
    pid = (
        lake.spark.range(1)
        .select(user_person_id(F.lit(u["user_id"]), s.privacy.pseudonym_key))
        .first()[0]
    )
    expected = {
        "silver.events": lake.read("silver.events").filter(F.col("person_id") == pid).count(),
        "silver.sessions": lake.read("silver.sessions").filter(F.col("person_id") == pid).count(),
        "gold.user_features": lake.read("gold.user_features")
        .filter(F.col("person_id") == pid)
        .count(),
    }
    assert all(n > 0 for n in expected.values()), expected
    for table, n in expected.items():
        assert manifest["tables"][table] == n, (table, n, manifest["tables"])
        assert len(json.loads(z.read(f"{table}.json"))) == n
    raw_bronze = lake.read("bronze.events").filter(F.col("user_id") == u["user_id"]).count()
    assert manifest["tables"]["bronze.events"] >= raw_bronze > 0
    assert set(manifest["tables"]) | {"manifest"} == {n.removesuffix(".json") for n in z.namelist()}


def test_k_anonymity_boundary(spark: SparkSession) -> None:
    from behavior_lake.governance.export import country_of, k_anonymous

    df = spark.createDataFrame(
        [("a", "US", 9), ("b", "US", 10), ("c", "DE", 11), ("d", "FR", 1)],
        "segment_name string, country string, persons long",
    )
    kept, suppressed = k_anonymous(df, 10)
    assert sorted(r.segment_name for r in kept.collect()) == ["b", "c"] and suppressed == 2
    loc = spark.createDataFrame([("en-US",), ("de_DE",), ("xx",), (None,)], "l string")
    assert [r[0] for r in loc.select(country_of(F.col("l"))).collect()] == [
        "US",
        "DE",
        "unknown",
        "unknown",
    ]


def _export_everywhere(demo: Demo, user_id: str, folder: Path, s3_server: str) -> list[str]:
    """Exports of the user to a folder and to an S3 bucket; their locations."""
    import boto3

    from behavior_lake.governance.export import export_subject

    s = replace(
        demo.settings,
        governance=replace(demo.settings.governance, export_endpoint_url=s3_server),
    )
    boto3.client("s3", endpoint_url=s3_server).create_bucket(Bucket="handed-out")
    return [
        export_subject(demo.lake, s, user_id, out).location
        for out in (str(folder), "s3://handed-out/subjects")
    ]


def _s3_keys(s3_server: str) -> list[str]:
    import boto3

    listed = boto3.client("s3", endpoint_url=s3_server).list_objects_v2(Bucket="handed-out")
    return [o["Key"] for o in listed.get("Contents", [])]


def test_erasure_removes_subject_everywhere_and_blocks_rearrival(
    demo: Demo, capsys, tmp_path: Path, s3_server: str
) -> None:
    from behavior_lake.jobs import erase_subjects

    lake, s = demo.lake, demo.settings
    u, other = subjects(demo)[0], subjects(demo)[2]
    # the subject's access exports, and another person's (which must stay)
    local, remote = _export_everywhere(demo, u["user_id"], tmp_path / "exports", s3_server)
    kept_local, kept_remote = _export_everywhere(
        demo, other["user_id"], tmp_path / "exports", s3_server
    )
    assert Path(local).exists() and len(_s3_keys(s3_server)) == 2
    raw = [u["user_id"], *[d["anonymous_id"] for d in u["devices"]]]
    pid = (
        lake.spark.range(1)
        .select(user_person_id(F.lit(u["user_id"]), s.privacy.pseudonym_key))
        .first()[0]
    )
    assert lake.read("silver.events").filter(F.col("person_id") == pid).count() > 0
    assert files_mentioning(s.lake.root, [*raw, pid])  # the subject is on disk before
    endpoint = f"governance.export_endpoint_url={s3_server}"
    erase = demo.job_args("--conf", endpoint, "--user-id", u["user_id"])
    assert erase_subjects.cli(erase) == 0
    out = capsys.readouterr().out
    assert ": done," in out
    # no file under the lake root holds the raw ids or the pseudonym any more
    assert files_mentioning(s.lake.root, [*raw, pid]) == []
    req = lake.read("ops.erasure_requests").first()
    assert req.status == "done" and req.user_id_enc is None and req.rows_deleted > 0
    assert "silver.events" in req.tables_touched and "bronze.events" in req.tables_touched
    actions = {r.action for r in lake.read("ops.audit_log").collect()}
    assert {"erase_rows", "erase_vacuum", "erasure", "job:erase_subjects"} <= actions
    # on delta-spark the demo tables have deletion vectors: the rows were only marked
    # deleted until the purge rewrote their files (and the check above found nothing)
    assert ("erase_purge" in actions) == s.lake.deletion_vectors
    # the subject's exports are gone, file and object; the other person's are not
    assert not Path(local).exists() and Path(kept_local).exists()
    assert _s3_keys(s3_server) == [kept_remote.removeprefix("s3://handed-out/")]
    ledger = {r.location: r for r in lake.read("ops.subject_exports").collect()}
    assert {ledger[x].deleted_reason for x in (local, remote)} == {"erasure"}
    assert {ledger[x].status for x in (kept_local, kept_remote)} == {"available"}
    assert "erase_exports" in actions
    # re-arrival: a new line from the erased user is suppressed at bronze, not stored
    day = demo.last_day + timedelta(days=3)
    folder = Path(s.landing.root) / day.isoformat() / "10"
    folder.mkdir(parents=True, exist_ok=True)
    msg = {
        "messageId": "late-erased-1",
        "type": "track",
        "event": "Product Viewed",
        "userId": u["user_id"],
        "anonymousId": u["devices"][0]["anonymous_id"],
        "timestamp": f"{day.isoformat()}T10:00:00Z",
        "receivedAt": f"{day.isoformat()}T10:00:01Z",
        "sentAt": f"{day.isoformat()}T10:00:00Z",
        "properties": {"product_id": "p1"},
        "context": {"library": {"name": "analytics.js"}},
    }
    (folder / "late.jsonl").write_text(json.dumps(msg) + "\n")
    st = ingest(lake, s, demo.taxonomy, "r-after-erasure")
    assert sum(b.suppressed_rows for b in st) == 1
    batch = lake.read("ops.ingest_batches").orderBy(F.desc("started_at")).first()
    assert batch.lines_read == (
        batch.bronze_rows + batch.quarantined_rows + batch.sampled_out_rows + batch.suppressed_rows
    )
    assert files_mentioning(s.lake.root, [u["user_id"]]) == []


def test_retention_guard_stops_a_run_that_would_delete_most_of_a_table(retained) -> None:
    lake, s = retained
    # 2 of 5 daily_kpis rows (40%) are older than the cutoff
    strict = replace(s, retention=replace(s.retention, max_delete_share=0.3))
    v = lake.version(DAILY_KPIS.name)
    with pytest.raises(RetentionGuardError, match=r"gold.daily_kpis \(2 of 5 rows.*--force"):
        enforce_retention(lake, strict, "r", today=TODAY)
    assert lake.version(DAILY_KPIS.name) == v  # nothing deleted
    res = {t.table: t for t in enforce_retention(lake, strict, "r", today=TODAY, force=True)}
    assert res[DAILY_KPIS.name].rows_deleted == 2


def test_retention_guard_lets_an_ordinary_run_through(retained) -> None:
    lake, s = retained  # positive control of the guard: 40% < 0.5
    loose = replace(s, retention=replace(s.retention, max_delete_share=0.5))
    res = {t.table: t for t in enforce_retention(lake, loose, "r", today=TODAY)}
    assert res[DAILY_KPIS.name].rows_deleted == 2


class _SilverOnly:
    """A lake holding only silver.events (what reference_date reads)."""

    def __init__(self, spark: SparkSession, days: list[date]) -> None:
        self.df = spark.createDataFrame([(d,) for d in days], "event_date date")

    def exists(self, name: str) -> bool:
        return name == "silver.events"

    def read(self, name: str):
        return self.df


def test_forged_event_date_cannot_move_the_retention_reference(spark: SparkSession) -> None:
    s = lake_test_settings("unused", "retention.reference=data")
    wall = date(2026, 12, 2)
    honest = _SilverOnly(spark, [date(2026, 2, 14), date(2026, 2, 15)])
    assert reference_date(honest, s, wall=wall) == date(2026, 2, 16)
    forged = _SilverOnly(spark, [date(2026, 2, 15), date(2099, 12, 31)])
    assert reference_date(forged, s, wall=wall) == date(2026, 12, 3)
    # --today is honoured, also under reference: data, and refused in the future
    assert reference_date(forged, s, today=date(2026, 3, 1), wall=wall) == date(2026, 3, 1)
    with pytest.raises(ValueError, match="--today 2027-01-01: later than tomorrow"):
        reference_date(forged, s, today=date(2027, 1, 1), wall=wall)


def test_expired_subject_exports_are_deleted(lake: Lake, lake_root: str, tmp_path: Path) -> None:
    from behavior_lake.contracts.codes import ExportDeletion
    from behavior_lake.governance.export_ledger import (
        ExportDeletionError,
        delete_exports,
        record_export,
    )

    s = lake_test_settings(lake_root, "governance.export_keep_days=7")
    files = [tmp_path / f"subject-{n}.zip" for n in ("a", "b")]
    for f in files:
        f.write_bytes(b"zip")
        record_export(lake, s, str(f), f.name, 1)
    now = datetime.now()
    # nothing has expired yet (control), then both have
    assert delete_exports(lake, s, ExportDeletion.EXPIRED, expired_before=now) == 0
    assert all(f.exists() for f in files)
    later = now + timedelta(days=8)
    assert delete_exports(lake, s, ExportDeletion.EXPIRED, expired_before=later, dry_run=True) == 2
    assert all(f.exists() for f in files)
    assert delete_exports(lake, s, ExportDeletion.EXPIRED, expired_before=later) == 2
    assert not any(f.exists() for f in files)
    rows = lake.read("ops.subject_exports").collect()
    assert {(r.status, r.deleted_reason) for r in rows} == {("deleted", "expired")}
    assert delete_exports(lake, s, ExportDeletion.EXPIRED, expired_before=later) == 0  # rerun
    # a store that cannot be reached: the run fails naming it, the row stays available
    # for the next run, and the other expired file is still deleted
    s = lake_test_settings(
        lake_root,
        "governance.export_keep_days=7",
        "governance.export_endpoint_url=http://127.0.0.1:9",
    )
    record_export(lake, s, "s3://unreachable/subject-c.zip", "c", 1)
    third = tmp_path / "subject-d.zip"
    third.write_bytes(b"zip")
    record_export(lake, s, str(third), "d", 1)
    with pytest.raises(ExportDeletionError, match=r"1 of 2 .* s3://unreachable/subject-c\.zip"):
        delete_exports(lake, s, ExportDeletion.EXPIRED, expired_before=later)
    assert not third.exists()
    status = {r.export_id: r.status for r in lake.read("ops.subject_exports").collect()}
    assert status["subject-c.zip"] == "available" and status["subject-d.zip"] == "deleted"


def test_local_subject_export_is_owner_only(demo: Demo, tmp_path: Path) -> None:
    import stat

    from behavior_lake.governance.export import export_subject

    u = subjects(demo)[0]
    res = export_subject(demo.lake, demo.settings, u["user_id"], str(tmp_path / "exports"))
    mode = stat.S_IMODE(os.stat(res.location).st_mode)
    assert res.manifest["total_rows"] > 0 and mode == 0o600, oct(mode)
    with pytest.raises(ValueError, match="placeholder id"):
        export_subject(demo.lake, demo.settings, "null", str(tmp_path / "exports"))
