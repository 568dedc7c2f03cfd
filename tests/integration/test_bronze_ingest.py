"""Generator -> bronze: every line accounted for, idempotent reruns, crash recovery."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

import behavior_lake.bronze.ingest as ingest_mod
from behavior_lake.bronze.ingest import ingest
from behavior_lake.catalog import resolve
from behavior_lake.config import Settings
from behavior_lake.contracts.taxonomy import load_taxonomy
from behavior_lake.generator.generate import generate
from behavior_lake.lake import Lake
from tests.conftest import CONF, lake_test_settings

FAULTY = dict(
    malformed_json=0.01,
    truncated_line=0.01,
    missing_field=0.01,
    wrong_type=0.01,
    unknown_event=0.01,
    duplicate=0.02,
    late=0.02,
    future_timestamp=0.01,
    undeclared_property=0.02,
)


def count_lines(root: str | Path) -> int:
    """Independent count: lines as any JSON-lines reader sees them."""
    total = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = os.path.join(dirpath, name)
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rb") as fh:
                data = fh.read()
            if data:
                total += data.count(b"\n") + (0 if data.endswith(b"\n") else 1)
    return total


def make_settings(tmp: Path, **gen) -> Settings:
    s = lake_test_settings(
        tmp / "lakehouse", f"landing.root={tmp / 'landing'}", f"landing.truth_root={tmp / 'truth'}"
    )
    faults = replace(s.generator.faults, **FAULTY)
    g = replace(
        s.generator,
        users=gen.get("users", 30),
        days=gen.get("days", 4),
        partitions=2,
        faults=faults,
    )
    return replace(s, generator=g)


def table_count(lake: Lake, table: str) -> int:
    return lake.read(table).count() if lake.exists(table) else 0


@pytest.fixture
def fresh(spark: SparkSession, tmp_path: Path, default_engine: str) -> tuple[Settings, Lake]:
    """Settings and an empty lake of their own, with an empty landing folder."""
    from behavior_lake.lake import make_lake

    settings = make_settings(tmp_path)
    return settings, make_lake(spark, settings.lake.root, default_engine, resolve(settings))


@pytest.fixture
def landed(spark: SparkSession, fresh: tuple[Settings, Lake]) -> tuple[Settings, Lake]:
    settings, lake = fresh
    generate(spark, settings.generator, settings.landing.root, settings.landing.truth_root)
    return settings, lake


def test_generator_is_deterministic(spark: SparkSession, tmp_path: Path) -> None:
    digests = []
    for run in ("a", "b"):
        s = make_settings(tmp_path / run, users=12, days=3)
        res = generate(spark, s.generator, s.landing.root, s.landing.truth_root)
        assert res.lines > 100 and res.persons == 12
        files = sorted(Path(s.landing.root).rglob("*.jsonl*"))
        digests.append(
            {
                str(f.relative_to(s.landing.root)): hashlib.sha1(f.read_bytes()).hexdigest()
                for f in files
            }
        )
        truth = [
            json.loads(x)
            for x in (Path(s.landing.truth_root) / "users" / "users.jsonl").read_text().splitlines()
        ]
        assert {t["archetype"] for t in truth} <= {
            "power_buyer",
            "browser",
            "deal_seeker",
            "at_risk",
            "new_user",
            "bot",
        }
    assert digests[0] == digests[1]


def test_every_line_accounted_for_and_rerun_adds_nothing(landed) -> None:
    settings, lake = landed
    taxonomy = load_taxonomy(CONF)
    expected_lines = count_lines(settings.landing.root)
    batches = ingest(lake, settings, taxonomy, "run-1")
    assert len(batches) == 1
    b = batches[0]
    assert b.lines_read == expected_lines
    bronze, quarantine = table_count(lake, "bronze.events"), table_count(lake, "bronze.quarantine")
    assert bronze == b.bronze_rows and quarantine == b.quarantined_rows
    assert bronze + quarantine == expected_lines
    assert quarantine > 0, "the faulty generator should have produced quarantined lines"
    reasons = {r[0] for r in lake.read("bronze.quarantine").select("reason").distinct().collect()}
    assert {"malformed_json", "missing_message_id"} & reasons
    recorded = lake.read("ops.ingest_batches").first()
    assert (
        recorded["lines_read"]
        == recorded["bronze_rows"] + recorded["quarantined_rows"] + recorded["sampled_out_rows"]
        == expected_lines
    )
    drift = {r["drift_kind"] for r in lake.read("ops.schema_drift").collect()}
    assert {"unknown_event", "new_property"} <= drift
    versions = {t: lake.version(t) for t in ("bronze.events", "bronze.quarantine")}

    assert ingest(lake, settings, taxonomy, "run-2") == []  # nothing new
    assert {t: lake.version(t) for t in versions} == versions
    assert table_count(lake, "bronze.events") == bronze


def test_crash_mid_batch_then_rerun_leaves_one_copy(landed, monkeypatch) -> None:
    settings, lake = landed
    taxonomy = load_taxonomy(CONF)
    expected_lines = count_lines(settings.landing.root)

    def crash(*_a, **_k):
        raise RuntimeError("simulated crash after the bronze write")

    monkeypatch.setattr(ingest_mod, "_finish", crash)
    with pytest.raises(RuntimeError, match="simulated crash"):
        ingest(lake, settings, taxonomy, "run-crash")
    partial = table_count(lake, "bronze.events")
    assert partial > 0  # the crash happened after rows were committed
    monkeypatch.undo()

    batches = ingest(lake, settings, taxonomy, "run-recover")
    # one crash: the interrupted batch is retried in two halves, not file by file
    assert len(batches) == 2
    assert sum(b.lines_read for b in batches) == expected_lines
    total = table_count(lake, "bronze.events") + table_count(lake, "bronze.quarantine")
    assert total == expected_lines
    per_file = lake.read("bronze.events").groupBy("source_file", "ingest_batch_id").count()
    assert per_file.select("source_file").distinct().count() == per_file.count()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_foreign_and_broken_files_never_crash(fresh) -> None:
    """Files in the same contract from another producer, with other faults."""
    settings, lake = fresh
    land = Path(settings.landing.root)
    good = {
        "messageId": "x1",
        "type": "track",
        "event": "Order Completed",
        "userId": "42",
        "timestamp": "2026-02-01T00:00:00+00:00",
        "properties": {"order_id": "o1", "revenue": "19.99", "currency": "EUR"},
    }
    pretty = json.dumps(good, indent=2)  # a producer that pretty-prints: every line is broken
    foreign = (
        "\ufeff"
        + json.dumps(good)
        + "\r\n"
        + json.dumps({**good, "messageId": "x2"})
        + "\r\n"
        + pretty
        + "\r\n"
        + "\x00\x00"
        + "\r\n"
    )
    _write(land / "2026-02-01" / "00" / "other-producer.jsonl", foreign.encode())
    _write(land / "2026-02-01" / "00" / "empty.jsonl", b"")
    full = gzip.compress((json.dumps(good) + "\n").encode() * 200)
    _write(land / "2026-02-01" / "01" / "cut.jsonl.gz", full[: len(full) // 2])
    _write(land / "2026-02-01" / "notes.txt", b"not an event file\n")
    _write(land / "2026-02-01" / "01" / ".inflight.jsonl", b"{}\n")  # hidden: left alone

    batches = ingest(lake, settings, load_taxonomy(CONF), "run-foreign")
    b = batches[0]
    # the cut gzip's last 4 bytes are not a trailer: refused unread as a bomb or as unreadable
    assert b.unreadable_files + b.unexpected_files == 2 and b.files == 4
    expected = 2 + len(pretty.splitlines()) + 1
    assert b.lines_read == expected
    assert b.bronze_rows == 2 and b.quarantined_rows == expected - 2
    q = {
        r["reason"]: r["n"]
        for r in lake.read("bronze.quarantine")
        .groupBy("reason")
        .agg(F.count("*").alias("n"))
        .collect()
    }
    assert q.get("unreadable_file", 0) + q.get("decompression_limit", 0) == 1
    assert q["unexpected_file"] == 1
    assert q["malformed_json"] + q.get("not_an_object", 0) == expected - 2
    bronze = lake.read("bronze.events").orderBy("message_id").collect()
    assert [r["message_id"] for r in bronze] == ["x1", "x2"]
    assert bronze[0]["raw_line"].startswith("{")  # BOM and CR removed

    # A later file is picked up alone; the done ones are not read again.
    _write(
        land / "2026-02-02" / "00" / "late.jsonl",
        (json.dumps({**good, "messageId": "x3"}) + "\n").encode(),
    )
    second = ingest(lake, settings, load_taxonomy(CONF), "run-next")
    assert [x.files for x in second] == [1] and second[0].bronze_rows == 1


def test_job_cli_records_runs_and_rejects_bad_conf(
    spark: SparkSession, tmp_path: Path, capsys, default_engine: str
) -> None:
    from behavior_lake.jobs import bronze_ingest

    s = make_settings(tmp_path, users=8, days=2)
    generate(spark, s.generator, s.landing.root, s.landing.truth_root)
    args = [
        "--conf",
        f"lake.root={s.lake.root}",
        "--conf",
        f"landing.root={s.landing.root}",
        "--conf",
        "spark.master=local[2]",
    ]
    assert bronze_ingest.cli(args) == 0
    from behavior_lake.lake import make_lake

    lake = make_lake(spark, s.lake.root, default_engine)
    run = lake.read("ops.job_runs").first()
    assert run["status"] == "success" and run["job"] == "bronze_ingest"
    assert run["rows_in"] == count_lines(s.landing.root) == run["metrics"]["lines_read"]

    assert bronze_ingest.cli([*args, "--conf", "bronze.max_filez=3"]) == 2
    assert "bronze.max_filez" in capsys.readouterr().err


def test_failed_run_is_recorded(spark: SparkSession, tmp_path: Path, default_engine: str) -> None:
    from behavior_lake.lake import make_lake
    from behavior_lake.runtime import job_context

    s = lake_test_settings(tmp_path / "lake")
    with pytest.raises(ZeroDivisionError), job_context("boom", spark=spark, settings=s):
        _ = 1 / 0
    row = make_lake(spark, s.lake.root, default_engine).read("ops.job_runs").first()
    assert row["status"] == "failed" and "ZeroDivisionError" in row["error"]


def test_killed_run_is_recorded_by_the_next_job(
    spark: SparkSession, tmp_path: Path, default_engine: str
) -> None:
    """A run killed outright (no finally ran) left its register entry; the next job
    records it as killed, once. A live entry (this process) is left alone."""
    from behavior_lake.lake import make_lake
    from behavior_lake.runtime import job_context

    s = lake_test_settings(tmp_path / "lake")
    running = tmp_path / "lake" / "_leases" / "running"
    running.mkdir(parents=True)
    host = os.uname()[1]
    for run_id, pid in (("gold_features-killed", 2**22 + 17), ("alive-elsewhere", os.getpid())):
        (running / f"{run_id}.json").write_text(json.dumps({
            "job": run_id.split("-")[0], "env": "local", "engine": "delta-rs", "run_id": run_id,
            "pid": pid, "host": host, "since": "2026-12-01T03:00:00+00:00"}))  # fmt: skip
    for name in ("next", "after"):
        with job_context(name, spark=spark, settings=s):
            pass
    runs = {
        r["run_id"]: r
        for r in make_lake(spark, s.lake.root, default_engine).read("ops.job_runs").collect()
    }
    killed = [r for r in runs.values() if r["status"] == "killed"]
    assert [(r["run_id"], r["job"]) for r in killed] == [("gold_features-killed", "gold_features")]
    assert (running / "alive-elsewhere.json").exists()
    assert sorted(r["status"] for r in runs.values()) == ["killed", "success", "success"]


ODD_NAMES = [
    "events[1].jsonl",
    "a{b,c}.jsonl",
    "*.jsonl",
    "a+b.jsonl",
    "c:d.jsonl",
    "back\\slash.jsonl",
    "q'uote\\'.jsonl",
    "sp ace%20.jsonl",
    "h#ash?.jsonl",
    "plain.jsonl",
]


def _event_line(mid: str) -> bytes:
    m = {"messageId": mid, "type": "track", "event": "Product Viewed", "anonymousId": "a1",
         "timestamp": "2026-02-01T00:10:00Z", "properties": {"product_id": "p"}}  # fmt: skip
    return (json.dumps(m) + "\n").encode()


def test_any_legal_file_name_loads_exactly_once(fresh, monkeypatch) -> None:
    """Glob characters, '+', ':', quotes and backslashes in names; also through crash
    recovery (the pending names go into a delete predicate)."""
    settings, lake = fresh
    folder = Path(settings.landing.root) / "2026-02-01" / "00"
    for i, name in enumerate(ODD_NAMES):
        _write(folder / name, _event_line(f"m{i}a") + _event_line(f"m{i}b"))
    taxonomy = load_taxonomy(CONF)
    monkeypatch.setattr(ingest_mod, "_finish", lambda *a, **k: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        ingest(lake, settings, taxonomy, "run-crash")
    monkeypatch.undo()
    ingest(lake, settings, taxonomy, "run-1")
    ingest(lake, settings, taxonomy, "run-2")  # nothing new
    got = {
        r["source_file"]: r["n"]
        for r in lake.read("bronze.events").groupBy("source_file").agg(F.count("*").alias("n"))
        .collect()
    }  # fmt: skip
    assert got == {f"2026-02-01/00/{n}": 2 for n in ODD_NAMES}
    assert table_count(lake, "bronze.quarantine") == 0


def test_symlinks_bombs_and_changed_files_are_quarantined_not_followed(
    fresh, tmp_path: Path
) -> None:
    settings, lake = fresh
    land = Path(settings.landing.root)
    secret = tmp_path / "outside" / ".env"
    _write(secret, b'{"AWS_SECRET_ACCESS_KEY": "not-for-the-lake"}\n')
    (land / "2026-02-01" / "00").mkdir(parents=True)
    os.symlink(secret, land / "2026-02-01" / "00" / "env.jsonl")
    os.symlink(secret.parent, land / "2026-02-01" / "01")  # a linked folder
    bomb = gzip.compress(b"\n" * 3_000_000)  # ~3 KB declaring 3 MB (ratio ~1000)
    _write(land / "2026-02-01" / "02" / "bomb.jsonl.gz", bomb)
    ok = gzip.compress(_event_line("g1") * 50)  # positive control: an ordinary gzip
    _write(land / "2026-02-01" / "02" / "fine.jsonl.gz", ok)
    grows = land / "2026-02-01" / "03" / "grows.jsonl"
    _write(grows, _event_line("c1") + _event_line("c2"))
    taxonomy = load_taxonomy(CONF)
    ingest(lake, settings, taxonomy, "run-1")
    grows.write_bytes(grows.read_bytes() + _event_line("c3"))  # re-uploaded, bigger
    ingest(lake, settings, taxonomy, "run-2")
    ingest(lake, settings, taxonomy, "run-3")  # the change is reported once
    q = lake.read("bronze.quarantine")
    reasons = sorted((r["source_file"], r["reason"]) for r in q.collect())
    assert reasons == [
        ("2026-02-01/00/env.jsonl", "symbolic_link"),
        ("2026-02-01/01", "symbolic_link"),
        ("2026-02-01/02/bomb.jsonl.gz", "decompression_limit"),
        ("2026-02-01/03/grows.jsonl", "changed_file"),
    ]
    assert q.filter(F.col("raw_line").contains("not-for-the-lake")).count() == 0
    bronze = lake.read("bronze.events")
    assert bronze.filter(F.col("source_file").endswith("fine.jsonl.gz")).count() == 50
    assert sorted(r[0] for r in bronze.filter(F.col("message_id").startswith("c")).collect()) == [
        "c1",
        "c2",
    ]


def test_concurrent_ingestion_claims_the_lease(fresh) -> None:
    """A run started while another holds the lease does nothing and says who holds it;
    once released (or its holder is dead), the next run proceeds."""
    from behavior_lake.ops import lease

    settings, lake = fresh
    _write(Path(settings.landing.root) / "2026-02-01" / "00" / "a.jsonl", _event_line("m1"))
    taxonomy = load_taxonomy(CONF)
    with lease.exclusive(settings.lake.root, "bronze_ingest", "run-first"):
        with pytest.raises(lease.LeaseHeldError, match="run run-first"):
            ingest(lake, settings, taxonomy, "run-second")
        assert table_count(lake, "bronze.events") == 0
    assert [b.bronze_rows for b in ingest(lake, settings, taxonomy, "run-third")] == [1]
    # a lease left by a process that died is taken over
    path = Path(settings.lake.root) / "_leases" / "bronze_ingest.lease"
    path.write_text(json.dumps({"run_id": "dead", "pid": 2**22 + 17, "host": os.uname()[1],
                                "since": "2026-12-01T00:00:00+00:00"}))  # fmt: skip
    assert ingest(lake, settings, taxonomy, "run-fourth") == []
    assert not path.exists()


@pytest.mark.e2e  # two job processes (two JVMs) at once: make test-e2e
def test_two_processes_started_together_load_every_line_once(tmp_path: Path) -> None:
    """Two real bronze_ingest processes racing for the same landing files."""
    import subprocess
    import sys

    land, lake_root = tmp_path / "landing", tmp_path / "lakehouse"
    for i in range(20):
        _write(land / "2026-02-01" / f"{i % 24:02d}" / f"f{i}.jsonl", _event_line(f"m{i}"))
    repo = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, str(repo / "jobs" / "bronze_ingest.py"), "--conf",
           f"lake.root={lake_root}", "--conf", f"landing.root={land}", "--conf",
           "spark.master=local[1]", "--conf", "spark.driver_memory=1g"]  # fmt: skip
    env = {**os.environ, "BEHAVIOR_LAKE_CONF": str(repo / "conf")}
    procs = [subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for _ in range(2)]  # fmt: skip
    outs = [p.communicate(timeout=300)[0] for p in procs]
    codes = sorted(p.returncode for p in procs)
    from deltalake import DeltaTable

    rows = DeltaTable(str(lake_root / "bronze" / "events")).to_pyarrow_table(columns=["message_id"])
    ids = rows.column("message_id").to_pylist()
    assert sorted(ids) == sorted(f"m{i}" for i in range(20)), outs
    # either one lost the race (exit 1 naming the holder) or they ran one after the other
    assert codes in ([0, 0], [0, 1]), outs
    if codes == [0, 1]:
        assert any("already running" in o for o in outs), outs


def test_crashed_batch_is_counted_once_in_the_ledgers(fresh, monkeypatch) -> None:
    """A crash after the batch's ledger row but before its files were marked done: the
    rerun removes that row, so ops.ingest_batches adds up to the lines once."""
    settings, lake = fresh
    land = Path(settings.landing.root) / "2026-02-01" / "00"
    for i in range(3):
        _write(land / f"f{i}.jsonl", _event_line(f"m{i}") + _event_line(f"n{i}"))
    real = ingest_mod.mark_files

    def crash_on_done(lake_, files, batch_id, status, lines=None):
        if status == "done":
            raise RuntimeError("killed before the files were marked done")
        return real(lake_, files, batch_id, status, lines)

    taxonomy = load_taxonomy(CONF)
    monkeypatch.setattr(ingest_mod, "mark_files", crash_on_done)
    with pytest.raises(RuntimeError, match="killed before"):
        ingest(lake, settings, taxonomy, "run-crash")
    assert lake.read("ops.ingest_batches").count() == 1  # the crashed batch's row
    monkeypatch.undo()
    ingest(lake, settings, taxonomy, "run-recover")
    ledger = lake.read("ops.ingest_batches").agg(F.sum("lines_read"), F.sum("bronze_rows")).first()
    assert tuple(ledger) == (6, 6)
    assert table_count(lake, "bronze.events") == 6


def test_a_file_that_crashes_its_batch_is_isolated_then_quarantined(fresh, monkeypatch) -> None:
    """A file that kills every batch it is in (like a line that ran the JVM out of
    memory) is retried alone, then quarantined as poison_file; the rest lands."""
    settings, lake = fresh
    land = Path(settings.landing.root) / "2026-02-01" / "00"
    for name in ("a.jsonl", "b.jsonl", "poison.jsonl"):
        _write(land / name, _event_line(name[0]))
    real = ingest_mod.read_lines

    def dies_on_poison(spark, files, *a):
        if any(f.rel.endswith("poison.jsonl") for f in files):
            raise RuntimeError("java.lang.OutOfMemoryError: Java heap space")
        return real(spark, files, *a)

    monkeypatch.setattr(ingest_mod, "read_lines", dies_on_poison)
    taxonomy = load_taxonomy(CONF)
    outcomes = []
    for run in range(4):
        try:
            outcomes.append([b.files for b in ingest(lake, settings, taxonomy, f"run-{run}")])
        except RuntimeError:
            outcomes.append("crashed")
    # 1: one batch of three dies; 2: halves [a, b] load, [poison] dies; 3: poison alone
    # dies (3 attempts); 4: it is quarantined without being read
    assert outcomes == ["crashed", "crashed", "crashed", []]
    assert sorted(r[0] for r in lake.read("bronze.events").select("message_id").collect()) == [
        "a",
        "b",
    ]
    q = lake.read("bronze.quarantine").collect()
    assert [(r["source_file"], r["reason"]) for r in q] == [
        ("2026-02-01/00/poison.jsonl", "poison_file")
    ]
    assert "3 time(s)" in q[0]["detail"]


def test_overlong_lines_are_skipped_unread_and_accounted(fresh) -> None:
    """Lines over 4 x bronze.max_line_chars (200) bytes never reach memory: the reader skips
    them and the file gets a line_too_long row with the bytes skipped. Lines over the
    character limit but under the byte limit are quarantined line by line, as before."""
    settings, lake = fresh
    settings = replace(settings, bronze=replace(settings.bronze, max_line_chars=200))
    huge = b'{"messageId": "h", "blob": "' + b"x" * 5000 + b'"}\n'
    mid = b'{"messageId": "m", "blob": "' + b"y" * 300 + b'"}\n'
    body = _event_line("ok1") + huge + mid + _event_line("ok2")
    land = Path(settings.landing.root) / "2026-02-01" / "00"
    _write(land / "plain.jsonl", body)
    _write(land / "packed.jsonl.gz", gzip.compress(body))
    _write(land / "fine.jsonl", _event_line("ok3"))  # positive control: nothing skipped
    ingest(lake, settings, load_taxonomy(CONF), "run")
    q = sorted(
        (r["source_file"], r["reason"], r["raw_line"] is None, r["detail"])
        for r in lake.read("bronze.quarantine").collect()
    )
    skipped = f"{len(huge)} bytes in line(s) over 804 bytes were not read"
    assert [x[:3] for x in q] == [
        ("2026-02-01/00/packed.jsonl.gz", "line_too_long", False),
        ("2026-02-01/00/packed.jsonl.gz", "line_too_long", True),
        ("2026-02-01/00/plain.jsonl", "line_too_long", False),
        ("2026-02-01/00/plain.jsonl", "line_too_long", True),
    ]
    assert sum(skipped in (x[3] or "") for x in q) == 2
    assert lake.read("bronze.events").count() == 5


def test_overlong_lines_and_bombs_are_found_in_gzip_files_on_s3(
    fresh, s3_server: str, spark: SparkSession
) -> None:
    """The same rules on a landing root on an S3 API: the .gz trailer is read with one
    ranged read, so a remote gzip with an overlong line or a bomb is caught as locally."""
    import boto3

    from behavior_lake.jars import cached_jars

    if not cached_jars(["s3"]):
        pytest.skip("needs the hadoop-aws jars in the cache (`make jars`)")
    from tests.integration.test_s3_lake import s3a_settings

    hconf = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[attr-defined]
    for key, value in s3a_settings(s3_server).items():
        hconf.set(key.removeprefix("spark.hadoop."), value)
    settings, lake = fresh
    settings = replace(
        settings,
        bronze=replace(settings.bronze, max_line_chars=200),
        landing=replace(settings.landing, root="s3a://landing-gz/in"),
    )
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    client.create_bucket(Bucket="landing-gz")
    huge = b'{"messageId": "h", "blob": "' + b"x" * 5000 + b'"}\n'
    files = {
        "packed.jsonl.gz": gzip.compress(_event_line("ok1") + huge + _event_line("ok2")),
        "bomb.jsonl.gz": gzip.compress(b"\n" * 3_000_000),
        "fine.jsonl.gz": gzip.compress(_event_line("ok3")),  # positive control
    }
    for name, data in files.items():
        client.put_object(Bucket="landing-gz", Key=f"in/2026-02-01/00/{name}", Body=data)
    ingest(lake, settings, load_taxonomy(CONF), "run")
    q = sorted((r["source_file"], r["reason"]) for r in lake.read("bronze.quarantine").collect())
    assert q == [
        ("2026-02-01/00/bomb.jsonl.gz", "decompression_limit"),
        ("2026-02-01/00/packed.jsonl.gz", "line_too_long"),
    ]
    ids = sorted(r[0] for r in lake.read("bronze.events").select("message_id").collect())
    assert ids == ["ok1", "ok2", "ok3"]
