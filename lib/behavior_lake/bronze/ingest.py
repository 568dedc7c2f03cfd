"""Bronze ingest: landing files not yet ingested -> bronze.events + bronze.quarantine.

Bookkeeping (ops.ingested_files, append-only): a batch's files are recorded `pending`
before any bronze write and `done` after. A file that is pending but never done was
interrupted: its rows are deleted from bronze and quarantine before it is ingested
again, so a crash and a rerun leave exactly one copy of every line.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urlparse

from pyspark.sql import Column, DataFrame, Row, SparkSession
from pyspark.sql import functions as F

from behavior_lake.bronze.drift import detect_drift
from behavior_lake.bronze.parse import TimeWindow, classify_lines, properties_variant
from behavior_lake.config import Settings
from behavior_lake.contracts.bronze import (
    BRONZE_EVENTS,
    BRONZE_QUARANTINE,
    INGEST_BATCHES,
    INGESTED_FILES,
    SCHEMA_DRIFT,
)
from behavior_lake.contracts.codes import FileStatus
from behavior_lake.contracts.taxonomy import Taxonomy
from behavior_lake.lake import Lake, LakeError, TableSpec, Where
from behavior_lake.ops import lease
from behavior_lake.spark import Caches, cache_scope

log = logging.getLogger(__name__)

# <landing.root>/<YYYY-MM-DD>/<HH>/<name>.jsonl[.gz]
LAYOUT = re.compile(r"(\d{4}-\d{2}-\d{2})/([01]\d|2[0-3])/([^/]+\.jsonl(?:\.gz)?)$")


@dataclass(frozen=True)
class LandingFile:
    uri: str  # fully qualified, as the file system names it
    rel: str  # path below landing.root: the `source_file` recorded everywhere
    size: int
    modified_ms: int
    is_link: bool = False  # a symbolic link: never followed out of the landing root

    @property
    def conforms(self) -> bool:
        return not self.is_link and bool(LAYOUT.fullmatch(self.rel))

    @property
    def read_path(self) -> str:
        """The URI with Hadoop's glob characters escaped: Spark globs every path it is
        given, so `events[1].jsonl` or `*.jsonl` would name other files, or none."""
        return _GLOB_CHARS.sub(r"\\\1", self.uri)


_GLOB_CHARS = re.compile(r"([\\{}\[\]*?])")
# Read local landing files without Hadoop's checksum layer, which looks for a `.<name>.crc`
# beside each file and cannot build that path for a name holding ':'.
_READ_OPTIONS = {
    "lineSep": "\n",
    "fs.file.impl": "org.apache.hadoop.fs.RawLocalFileSystem",
    "fs.file.impl.disable.cache": "true",
}


def gzip_declared_size(f: LandingFile, spark: SparkSession | None = None) -> int | None:
    """The uncompressed size a .gz file's trailer declares (ISIZE: the last 4 bytes,
    modulo 4 GiB, of the last member); None for other files. Local files are read
    directly; others (s3a://, abfss://, ...) through Hadoop's FileSystem with one ranged
    read when a session is given."""
    if not f.rel.endswith(".gz") or f.size < 18:
        return None
    if f.uri.startswith("file://"):
        with open(f.uri.removeprefix("file://"), "rb") as fh:
            fh.seek(-4, os.SEEK_END)
            return int.from_bytes(fh.read(4), "little")
    if spark is None:
        return None
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    path = jvm.org.apache.hadoop.fs.Path(f.uri)
    fs = path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())  # type: ignore[attr-defined]
    stream = fs.open(path)
    try:
        stream.seek(f.size - 4)
        tail = bytes(stream.read() & 0xFF for _ in range(4))
    finally:
        stream.close()
    return int.from_bytes(tail, "little")


def gzip_sizes(spark: SparkSession, files: Sequence[LandingFile]) -> dict[str, int]:
    """{rel: declared uncompressed size} of the batch's .gz files, read once."""
    out = {}
    for f in files:
        isize = gzip_declared_size(f, spark)
        if isize is not None:
            out[f.rel] = isize
    return out


def gzip_ratio_exceeded(f: LandingFile, max_ratio: float, isize: int | None) -> str | None:
    """A detail when a .gz file declares more than `max_ratio` times its size
    uncompressed (refused without decompressing it); else None."""
    if isize is not None and isize > max_ratio * f.size:
        return (
            f"declares {isize} uncompressed bytes for {f.size} compressed "
            f"(> bronze.max_decompression_ratio {max_ratio:g})"
        )
    return None


@dataclass
class BatchStats:
    batch_id: str
    files: int = 0
    unreadable_files: int = 0
    unexpected_files: int = 0
    lines_read: int = 0
    bronze_rows: int = 0
    quarantined_rows: int = 0
    sampled_out_rows: int = 0
    suppressed_rows: int = 0
    drift_rows: int = 0
    drift_summary: list[str] = field(default_factory=list)


def _visible(rel: str) -> bool:
    return not any(part.startswith((".", "_")) for part in rel.split("/"))


def list_landing_files(spark: SparkSession, root: str) -> list[LandingFile]:
    """Every visible file under the landing root (names starting with . or _ are
    in-flight uploads or markers and are left alone). Local paths are walked directly;
    other schemes (s3a://, abfss://, dbfs:/) go through Hadoop's FileSystem."""
    if "://" not in root and not root.startswith(("dbfs:", "file:")):
        return _list_local(os.path.abspath(root))
    if root.startswith("file:"):
        return _list_local(urlparse(root).path)
    jvm = spark.sparkContext._jvm  # type: ignore[attr-defined]
    hconf = spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[attr-defined]
    path = jvm.org.apache.hadoop.fs.Path(root)
    fs = path.getFileSystem(hconf)
    if not fs.exists(path):
        log.warning("landing root %s does not exist: nothing to ingest", root)
        return []
    base = fs.makeQualified(path).toString().rstrip("/") + "/"
    out: list[LandingFile] = []
    it = fs.listFiles(path, True)
    while it.hasNext():
        st = it.next()
        uri = st.getPath().toString()
        rel = uri[len(base) :] if uri.startswith(base) else uri
        if _visible(rel):
            out.append(LandingFile(uri, rel, int(st.getLen()), int(st.getModificationTime())))
    return sorted(out, key=lambda f: f.rel)


def _list_local(root: str) -> list[LandingFile]:
    if not os.path.isdir(root):
        log.warning("landing root %s does not exist: nothing to ingest", root)
        return []
    out = []
    for dirpath, dirs, names in os.walk(root):
        linked = [d for d in dirs if os.path.islink(os.path.join(dirpath, d))]
        dirs[:] = sorted(d for d in dirs if _visible(d) and d not in linked)
        for name in names + linked:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            if _visible(rel):
                st = os.lstat(full)  # a link is reported, never followed
                link = os.path.islink(full)
                out.append(
                    LandingFile("file://" + full, rel, st.st_size, int(st.st_mtime * 1000), link)
                )
    return sorted(out, key=lambda f: f.rel)


@dataclass(frozen=True)
class Pending:
    """A file whose ingestion started and never finished: how often, in which batches."""

    attempts: int
    batch_ids: tuple[str, ...]


# ops.ingested_files statuses that end a file's ingestion
FINAL = (FileStatus.DONE.value, FileStatus.QUARANTINED.value)


def ingested_status(lake: Lake) -> tuple[dict[str, int | None], dict[str, Pending]]:
    """({finished file: its size as last recorded}, {unfinished file: Pending}) from
    ops.ingested_files (one row per file, small next to the events)."""
    if not lake.exists(INGESTED_FILES.name):
        return {}, {}
    is_pending = F.col("status") == "pending"
    rows = (
        lake.read(INGESTED_FILES.name)
        .groupBy("source_file")
        .agg(
            F.max(F.col("status").isin(*FINAL).cast("int")).alias("done"),
            F.max_by("size_bytes", "recorded_at").alias("size"),
            F.count_if(is_pending).alias("attempts"),
            F.collect_set(F.when(is_pending, F.col("ingest_batch_id"))).alias("batches"),
        )
        .collect()
    )
    done = {r["source_file"]: r["size"] for r in rows if r["done"]}
    pending = {
        r["source_file"]: Pending(r["attempts"], tuple(sorted(r["batches"])))
        for r in rows
        if not r["done"]
    }
    return done, pending


def recover_interrupted(lake: Lake, pending: dict[str, Pending]) -> None:
    """Delete the rows of files whose earlier ingest did not finish, and the ledger rows
    (ops.ingest_batches, ops.schema_drift) of those batches, so a crashed batch is
    neither kept twice nor counted twice."""
    if not pending:
        return
    files = sorted(pending)
    batches = sorted({b for p in pending.values() for b in p.batch_ids})
    log.warning("recovering %d file(s) from an interrupted batch: %s", len(files), files[:5])
    for table, column, values in (
        (BRONZE_EVENTS.name, "source_file", files),
        (BRONZE_QUARANTINE.name, "source_file", files),
        (INGEST_BATCHES.name, "ingest_batch_id", batches),
        (SCHEMA_DRIFT.name, "ingest_batch_id", batches),
    ):
        if not lake.exists(table):
            continue
        for i in range(0, len(values), 500):
            res = lake.delete(table, Where.isin(column, values[i : i + 500]))
            if res.rows_deleted:
                log.info(
                    "removed %d row(s) of interrupted batches from %s", res.rows_deleted, table
                )


def _file_rows(
    lake: Lake,
    files: Sequence[LandingFile],
    batch_id: str,
    status: str,
    lines: dict[str, int] | None = None,
) -> DataFrame:
    now = datetime.now(UTC)
    rows = [
        Row(
            source_file=f.rel,
            size_bytes=f.size,
            modified_at=datetime.fromtimestamp(f.modified_ms / 1000, UTC),
            ingest_batch_id=batch_id,
            status=status,
            lines=(lines or {}).get(f.rel),
            recorded_at=now,
        )
        for f in files
    ]
    return lake.spark.createDataFrame(rows, INGESTED_FILES.schema).coalesce(1)


def mark_files(
    lake: Lake,
    files: Sequence[LandingFile],
    batch_id: str,
    status: str,
    lines: dict[str, int] | None = None,
) -> None:
    if files:
        lake.append(INGESTED_FILES.name, _file_rows(lake, files, batch_id, status, lines))


LINE_BYTES = "_line_bytes"  # bytes of the line with its newline, for skipped_long_lines


def max_line_bytes(max_line_chars: int) -> int:
    """Lines longer than this many bytes are skipped by the reader, never held in memory
    (a character is at most 4 bytes in UTF-8, so no line within max_line_chars is)."""
    return 4 * max_line_chars + 4


def read_lines(
    spark: SparkSession, files: Sequence[LandingFile], max_bytes: int = 4_000_004
) -> DataFrame:
    """One row per line (`raw_line`, `source_file`, LINE_BYTES) of conforming files
    (`LandingFile.conforms`); .gz is decompressed by extension. Lines over `max_bytes`
    are skipped by Hadoop's line reader; `skipped_long_lines` finds where."""
    df = (
        spark.read.options(**_READ_OPTIONS)
        .option("mapreduce.input.linerecordreader.line.maxlength", str(max_bytes))
        .text([f.read_path for f in files])
    )
    return line_columns(df)


def line_columns(df: DataFrame, path: Column | None = None, keep: Sequence[str] = ()) -> DataFrame:
    """Spark's text rows (`value`, `_metadata`) -> `raw_line`, `source_file`, LINE_BYTES.
    Shared by the batch reader and the activation stream (files, or Kafka, whose records
    name a landing-style `path` of their own)."""
    # Only conforming files are read, and their `rel` is exactly <date>/<hour>/<name>:
    # the last three path components (per line, so no regex: ~5 us a line saved),
    # percent-decoded; a literal '+' stays one (url_decode alone reads it as a space).
    path = F.col("_metadata.file_path") if path is None else path
    last3 = F.substring_index(path, "/", -3)
    rel = F.url_decode(F.replace(last3, F.lit("+"), F.lit("%2B")))
    return df.select(
        # A UTF-8 byte-order mark (Windows tools) and CR of CRLF endings are not content.
        # Trims rather than a regex (`^\uFEFF|\r$` tries a match at every character), in
        # the SQL syntax (the two-argument trim functions are deprecated).
        F.expr("trim(LEADING '\\uFEFF' FROM trim(TRAILING '\\r' FROM value))").alias("raw_line"),
        rel.alias("source_file"),
        (F.octet_length("value") + 1).alias(LINE_BYTES),
        *keep,
    )


def classify_with(
    settings: Settings, lines: DataFrame, ingested_at: datetime | None = None
) -> DataFrame:
    """`classify_lines` under the configured bronze and privacy settings (the batch
    reader, the activation stream and its real-time path)."""
    b, p = settings.bronze, settings.privacy
    return classify_lines(
        lines,
        max_line_chars=b.max_line_chars,
        pii_fields=p.pii_fields,
        pii_mode=p.pii_mode,
        key_hex=p.encryption_key,
        keep_rates=b.sampling,
        window=TimeWindow(b.min_event_date, b.max_future_hours),
        ingested_at=ingested_at,
    )


def skipped_long_lines(
    files: Sequence[LandingFile],
    bytes_read: dict[str, int],
    max_bytes: int,
    gz_sizes: dict[str, int],
) -> dict[str, tuple[str, str]]:
    """Files whose lines account for fewer bytes than the file holds: the reader skipped
    lines over `max_bytes` there. Decoding never shrinks a line (an invalid byte becomes
    a 3-byte U+FFFD), so any shortfall is skipped bytes. Plain files are compared with
    their size, .gz files (local or remote) with their trailer's size."""
    out = {}
    for f in files:
        expected = gz_sizes.get(f.rel) if f.rel.endswith(".gz") else f.size
        # the last line may have no newline: one byte of slack
        got = bytes_read.get(f.rel, 0)
        if expected is not None and expected - got > 1 and expected < 2**32:
            out[f.rel] = (
                "line_too_long",
                f"{expected - got} bytes in line(s) over {max_bytes} bytes were not read "
                "(bronze.max_line_chars)",
            )
    return out


def find_unreadable(spark: SparkSession, files: Sequence[LandingFile]) -> dict[str, str]:
    """Files Spark cannot read (corrupt/truncated gzip, permissions): {rel: error}."""
    bad: dict[str, str] = {}
    for f in files:
        try:
            spark.read.options(**_READ_OPTIONS).text(f.read_path).count()
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            bad[f.rel] = first[:500]
    return bad


def file_checks(
    files: Sequence[LandingFile], max_ratio: float, gz_sizes: dict[str, int]
) -> dict[str, tuple[str, str]]:
    """Files quarantined whole before any line is read: {rel: (reason, detail)}."""
    out: dict[str, tuple[str, str]] = {}
    for f in files:
        if f.is_link:
            out[f.rel] = ("symbolic_link", "links are not followed out of the landing root")
        elif not f.conforms:
            out[f.rel] = (
                "unexpected_file",
                "name does not follow <YYYY-MM-DD>/<HH>/<name>.jsonl[.gz]",
            )
        elif bomb := gzip_ratio_exceeded(f, max_ratio, gz_sizes.get(f.rel)):
            out[f.rel] = ("decompression_limit", bomb)
    return out


def _file_quarantine(
    spark: SparkSession, entries: dict[str, tuple[str, str]], batch_id: str, ingested_at: datetime
) -> DataFrame:
    rows = [
        Row(
            raw_line=None,
            reason=reason,
            detail=detail,
            message_id=None,
            anonymous_id=None,
            user_id=None,
            source_file=rel,
            ingest_batch_id=batch_id,
            ingested_at=ingested_at,
            ingest_date=ingested_at.date(),
        )
        for rel, (reason, detail) in sorted(entries.items())
    ]
    return spark.createDataFrame(rows, BRONZE_QUARANTINE.schema)


_BATCH_COLS = ("ingest_batch_id", "ingested_at", "ingest_date")


def _cached_columns() -> list[str | Column]:
    """What the batch's writes and drift check read of the classified lines: the bronze
    and quarantine columns, `_outcome` and the properties VARIANT. Not the parsed line
    and the per-field JSON types, which would triple the cache."""
    names = [c for c in BRONZE_EVENTS.schema.fieldNames() if c not in _BATCH_COLS]
    names += [
        c for c in BRONZE_QUARANTINE.schema.fieldNames() if c not in _BATCH_COLS + tuple(names)
    ]
    return [*names, "_outcome", LINE_BYTES, properties_variant()]


@dataclass
class ClassifiedBatch:
    """A batch's lines, classified and cached (None when no file could be read), with
    the line count per (file, outcome), bytes read per file and the files read."""

    frame: DataFrame | None
    counts: dict[tuple[str, str], int]
    bytes_read: dict[str, int]
    readable: list[LandingFile]


def ingest_batch(
    lake: Lake,
    settings: Settings,
    taxonomy: Taxonomy,
    files: Sequence[LandingFile],
    run_id: str,
) -> BatchStats:
    """Check the files, classify their lines (read once, cached), write bronze and the
    quarantine, record drift and the batch; the counts must add up."""
    batch_id = f"b{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    stats = BatchStats(batch_id=batch_id, files=len(files))
    started = datetime.now(UTC)
    t0 = time.monotonic()
    mark_files(lake, files, batch_id, FileStatus.PENDING.value)
    gz_sizes = gzip_sizes(lake.spark, files)
    file_issues = file_checks(files, settings.bronze.max_decompression_ratio, gz_sizes)
    readable = [f for f in files if f.rel not in file_issues]
    with cache_scope(settings) as caches:
        got = classify_batch(lake, settings, readable, file_issues, started, caches)
        stats.unreadable_files = sum(1 for r, _ in file_issues.values() if r == "unreadable_file")
        stats.unexpected_files = sum(1 for r, _ in file_issues.values() if r != "unreadable_file")
        # files with skipped overlong lines were read: their other lines load as usual
        limit = max_line_bytes(settings.bronze.max_line_chars)
        file_issues.update(skipped_long_lines(got.readable, got.bytes_read, limit, gz_sizes))
        per_outcome, per_file = _tally(got.counts)
        stats.lines_read = sum(per_file.values())
        log.info(
            "batch %s: %d file(s), %d line(s) read (%s)",
            batch_id,
            len(files),
            stats.lines_read,
            per_outcome,
        )
        if got.frame is not None:
            write_lines(lake, got.frame, batch_id, started, per_outcome, stats)
            lines = got.frame.filter(F.col("_outcome") != "quarantine")
            _record_drift(lake, lines, taxonomy, batch_id, stats)
    if file_issues:
        lake.append(
            BRONZE_QUARANTINE.name, _file_quarantine(lake.spark, file_issues, batch_id, started)
        )
        for rel, (reason, detail) in sorted(file_issues.items()):
            log.warning("quarantined file %s: %s (%s)", rel, reason, detail[:120])
    _finish(lake, files, batch_id, per_file, stats, run_id, started)
    log.info(
        "batch %s done in %.1fs: lines=%d bronze=%d quarantined=%d sampled_out=%d "
        "unreadable_files=%d unexpected_files=%d",
        batch_id,
        time.monotonic() - t0,
        stats.lines_read,
        stats.bronze_rows,
        stats.quarantined_rows,
        stats.sampled_out_rows,
        stats.unreadable_files,
        stats.unexpected_files,
    )
    return stats


def classify_batch(
    lake: Lake,
    settings: Settings,
    readable: list[LandingFile],
    file_issues: dict[str, tuple[str, str]],
    ingested_at: datetime,
    caches: Caches,
) -> ClassifiedBatch:
    """Read and classify every line of the readable files in one pass. A corrupt file
    fails the whole read: it is then found by reading the files one by one, added to
    `file_issues` (unreadable_file) and the rest read again."""
    spark = lake.spark
    b = settings.bronze
    limit = max_line_bytes(b.max_line_chars)
    while readable:
        classified = classify_with(settings, read_lines(spark, readable, limit), ingested_at)
        classified = suppress_erased(lake, classified, settings.privacy.pseudonym_key)
        classified = caches.large(classified.select(*_cached_columns()))
        try:
            rows = (
                classified.groupBy("source_file", "_outcome")
                .agg(F.count("*").alias("count"), F.sum(LINE_BYTES).alias("bytes"))
                .collect()
            )
        except Exception as exc:
            classified.unpersist()
            log.warning(
                "batch read failed (%s); checking files one by one", str(exc).splitlines()[0][:200]
            )
            bad = find_unreadable(spark, readable)
            if not bad:
                raise
            for rel, err in bad.items():
                file_issues[rel] = ("unreadable_file", err)
            readable = [f for f in readable if f.rel not in bad]
            continue
        counts = {(r["source_file"], r["_outcome"]): int(r["count"]) for r in rows}
        bytes_read: dict[str, int] = {}
        for r in rows:
            bytes_read[r["source_file"]] = bytes_read.get(r["source_file"], 0) + r["bytes"]
        return ClassifiedBatch(classified, counts, bytes_read, readable)
    return ClassifiedBatch(None, {}, {}, readable)


def _tally(counts: dict[tuple[str, str], int]) -> tuple[dict[str, int], dict[str, int]]:
    """Lines per outcome and per file."""
    per_outcome: dict[str, int] = {}
    per_file: dict[str, int] = {}
    for (rel, outcome), n in counts.items():
        per_outcome[outcome] = per_outcome.get(outcome, 0) + n
        per_file[rel] = per_file.get(rel, 0) + n
    return per_outcome, per_file


def write_lines(
    lake: Lake,
    classified: DataFrame,
    batch_id: str,
    ingested_at: datetime,
    per_outcome: dict[str, int],
    stats: BatchStats,
) -> None:
    """Append the batch's bronze and quarantined lines; written must equal counted."""
    batch_cols = [
        F.lit(batch_id).alias("ingest_batch_id"),
        F.lit(ingested_at).cast("timestamp").alias("ingested_at"),
        F.lit(ingested_at.date()).alias("ingest_date"),
    ]

    def rows_for(outcome: str, spec: TableSpec) -> DataFrame:
        cols = [c for c in spec.schema.fieldNames() if c not in _BATCH_COLS]
        return classified.filter(F.col("_outcome") == outcome).select(*cols, *batch_cols)

    stats.bronze_rows = lake.append(
        BRONZE_EVENTS.name, rows_for("bronze", BRONZE_EVENTS)
    ).rows_written
    stats.quarantined_rows = lake.append(
        BRONZE_QUARANTINE.name, rows_for("quarantine", BRONZE_QUARANTINE)
    ).rows_written
    stats.sampled_out_rows = per_outcome.get("sampled_out", 0)
    stats.suppressed_rows = per_outcome.get("suppressed", 0)
    if stats.suppressed_rows:
        log.info(
            "batch %s: %d line(s) of erased subjects suppressed (not stored)",
            batch_id,
            stats.suppressed_rows,
        )
    for expected, got, what in (
        (per_outcome.get("bronze", 0), stats.bronze_rows, "bronze"),
        (per_outcome.get("quarantine", 0), stats.quarantined_rows, "quarantine"),
    ):
        if expected != got:
            raise LakeError(f"batch {batch_id}: {what} rows written {got} != counted {expected}")


def _record_drift(
    lake: Lake, loadable: DataFrame, taxonomy: Taxonomy, batch_id: str, stats: BatchStats
) -> None:
    drift = detect_drift(loadable, taxonomy).collect()  # small: one row per drifting key
    stats.drift_rows = len(drift)
    if not drift:
        return
    now = datetime.now(UTC)
    rows = [Row(ingest_batch_id=batch_id, detected_at=now, **r.asDict()) for r in drift]
    df = lake.spark.createDataFrame(rows, SCHEMA_DRIFT.schema).coalesce(1)
    lake.append(SCHEMA_DRIFT.name, df)
    for r in sorted(drift, key=lambda r: -r["count"])[:20]:
        line = (
            f"{r['drift_kind']}: {r['event_type']}/{r['event']}"
            + (f".{r['property']}" if r["property"] else "")
            + (
                f" expected {r['expected_type']} saw {r['observed_type']}"
                if r["drift_kind"] == "type_mismatch"
                else ""
            )
            + f" x{r['count']}"
        )
        stats.drift_summary.append(line)
    log.warning(
        "schema drift in batch %s (%d finding(s)); top: %s",
        batch_id,
        len(drift),
        "; ".join(stats.drift_summary[:8]),
    )


def _finish(
    lake: Lake,
    files: Sequence[LandingFile],
    batch_id: str,
    per_file: dict[str, int],
    stats: BatchStats,
    run_id: str,
    started: datetime,
) -> None:
    row = Row(
        ingest_batch_id=batch_id,
        run_id=run_id,
        files=stats.files,
        unreadable_files=stats.unreadable_files + stats.unexpected_files,
        lines_read=stats.lines_read,
        bronze_rows=stats.bronze_rows,
        quarantined_rows=stats.quarantined_rows,
        sampled_out_rows=stats.sampled_out_rows,
        started_at=started,
        ended_at=datetime.now(UTC),
        suppressed_rows=stats.suppressed_rows,
    )
    lake.append(
        INGEST_BATCHES.name,
        lake.spark.createDataFrame([row], INGEST_BATCHES.schema).coalesce(1),
        evolve=True,  # lakes created before suppressed_rows existed gain the column
    )
    mark_files(lake, files, batch_id, "done", per_file)


def suppress_erased(lake: Lake, classified: DataFrame, key: str) -> DataFrame:
    """Lines about erased subjects (sha256 of their pseudonyms in ops.erasure_suppression) get
    the outcome `suppressed`: counted in the batch, written nowhere."""
    from behavior_lake.contracts.governance import SUPPRESSION
    from behavior_lake.privacy.fields import raw_field
    from behavior_lake.privacy.pseudonym import anon_hash, user_person_id

    if not lake.exists(SUPPRESSION.name):
        return classified
    ids = lake.read(SUPPRESSION.name).select("id_sha").distinct()
    if ids.limit(1).count() == 0:
        return classified
    hashes = [r[0] for r in ids.collect()]  # one row per erased id: small
    user = F.coalesce(F.col("user_id"), raw_field("userId"))
    anon = F.coalesce(F.col("anonymous_id"), raw_field("anonymousId"))
    hit = F.coalesce(F.sha2(user_person_id(user, key), 256).isin(hashes), F.lit(False)) | (
        F.coalesce(F.sha2(anon_hash(anon, key), 256).isin(hashes), F.lit(False))
    )
    return classified.withColumn(
        "_outcome", F.when(hit, F.lit("suppressed")).otherwise(F.col("_outcome"))
    )


def quarantine_files(
    lake: Lake, files: Sequence[LandingFile], issues: dict[str, tuple[str, str]], status: str
) -> None:
    """Quarantine whole files without reading them (one row each, reason and detail) and
    record `status` for them in ops.ingested_files."""
    if not files:
        return
    batch_id = f"f{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    lake.append(BRONZE_QUARANTINE.name, _file_quarantine(lake.spark, issues, batch_id, now))
    mark_files(lake, files, batch_id, status)
    for rel, (reason, detail) in sorted(issues.items()):
        log.warning("landing file %s quarantined (%s): %s", rel, reason, detail)


def changed_files(
    listed: Sequence[LandingFile], done: dict[str, int | None]
) -> dict[str, tuple[str, str]]:
    """Files that changed size after they were ingested (grown, truncated, re-uploaded).
    Policy (docs/arrival-time.md): they are not read again, since their earlier lines are
    in bronze already; each change is quarantined once as `changed_file` with both sizes
    (status `changed`), so it is never silent. Land new data under a new file name."""
    return {
        f.rel: ("changed_file", f"size {done[f.rel]} -> {f.size} bytes after ingestion")
        for f in listed
        if f.rel in done and done[f.rel] != f.size
    }


def poison_files(pending: dict[str, Pending], max_attempts: int) -> dict[str, tuple[str, str]]:
    """Files whose ingestion failed `max_attempts` times (the last ones alone in their
    batch): quarantined as `poison_file`, so the rest of the landing set keeps loading."""
    return {
        rel: (
            "poison_file",
            f"ingestion failed {p.attempts} time(s) (bronze.max_file_attempts={max_attempts}); "
            f"batches {', '.join(p.batch_ids[-3:])}",
        )
        for rel, p in pending.items()
        if p.attempts >= max_attempts
    }


def plan_batches(
    new_files: Sequence[LandingFile],
    max_files: int,
    pending: dict[str, Pending] | None = None,
    max_attempts: int = 3,
) -> list[list[LandingFile]]:
    """Batches of at most `max_files` (0 = all) files never tried before; then the files
    of interrupted batches, bisected: those that failed once in 2 groups, twice in 4, ...,
    and alone at their last allowed attempt. A one-off crash costs two batches; a file
    that crashes every batch it is in ends up alone, so it only stops itself."""
    pending = pending or {}
    fresh = [f for f in new_files if f.rel not in pending]
    size = max_files if max_files > 0 else max(len(fresh), 1)
    out = [fresh[i : i + size] for i in range(0, len(fresh), size)]
    by_attempts: dict[int, list[LandingFile]] = {}
    for f in sorted((f for f in new_files if f.rel in pending), key=lambda f: f.rel):
        by_attempts.setdefault(pending[f.rel].attempts, []).append(f)
    for attempts, files in sorted(by_attempts.items()):
        groups = len(files) if attempts >= max_attempts - 1 else 2**attempts
        step = max(1, -(-len(files) // groups))
        if max_files > 0:
            step = min(step, max_files)
        out += [files[i : i + step] for i in range(0, len(files), step)]
    return out


def ingest(lake: Lake, settings: Settings, taxonomy: Taxonomy, run_id: str) -> list[BatchStats]:
    """Ingest every landing file not ingested yet; returns per-batch stats."""
    # One ingestion at a time: a second run started meanwhile would load the same new
    # files again, or take the first run's live batch for a crashed one.
    with lease.exclusive(settings.lake.root, "bronze_ingest", run_id, spark=lake.spark):
        return _ingest(lake, settings, taxonomy, run_id)


def _ingest(lake: Lake, settings: Settings, taxonomy: Taxonomy, run_id: str) -> list[BatchStats]:
    spark = lake.spark
    for spec in (BRONZE_EVENTS, BRONZE_QUARANTINE, INGESTED_FILES, INGEST_BATCHES, SCHEMA_DRIFT):
        lake.ensure(spec.name)
    listed = list_landing_files(spark, settings.landing.root)
    done, pending = ingested_status(lake)
    recover_interrupted(lake, pending)
    changed = changed_files(listed, done)
    quarantine_files(lake, [f for f in listed if f.rel in changed], changed, "changed")
    poison = poison_files(pending, settings.bronze.max_file_attempts)
    quarantine_files(lake, [f for f in listed if f.rel in poison], poison, "quarantined")
    new_files = [f for f in listed if f.rel not in done and f.rel not in poison]
    log.info(
        "landing %s: %d file(s) listed, %d already ingested, %d new",
        settings.landing.root,
        len(listed),
        len(listed) - len(new_files),
        len(new_files),
    )
    batches = plan_batches(
        new_files, settings.bronze.max_files_per_batch, pending, settings.bronze.max_file_attempts
    )
    out = []
    for i, batch in enumerate(batches, 1):
        log.info("batch %d/%d: %d file(s)", i, len(batches), len(batch))
        out.append(ingest_batch(lake, settings, taxonomy, batch, run_id))
    return out
