"""Right to erasure: file requests, remove the subject from every layer, vacuum, verify.

A request stores the ids only as SHA-256 of their pseudonyms (so the lake keeps no
pseudonym of an erased subject) plus the raw ids AES-GCM-encrypted (needed to find the
subject, including raw lines in bronze.quarantine); the encrypted ids are cleared when
the request is done. Processing a request:

1. resolves the subject: the user id's person_id, the anonymous id's hash, and every id
   linked to them in silver.identity_map;
2. deletes every row about them: bronze.events and bronze.quarantine (raw ids, hashed on
   the fly; unparseable quarantined lines by the known raw ids as whole JSON id values), and every
   other declared table with a `person_id` or `anonymous_id_hash` column (silver, gold,
   ops: events, sessions, rejects, identity map, features, segments, scores, ...);
3. vacuums the touched tables with zero retention, so the files that held the rows are
   deleted from disk (time travel to versions before the erasure is no longer possible);
4. verifies: scans every data file left under each touched table for the subject and,
   on local disks, checks that no unreferenced data file remains;
5. adds the hashed ids to ops.erasure_suppression (bronze drops later lines of them),
   marks the request done (or failed with the reason) and writes the audit log.

Aggregates (daily KPIs, cohorts, funnels, paths) hold no per-person rows; they are
recomputed by the next gold_kpis run.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import unquote

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from behavior_lake.config import Settings
from behavior_lake.contracts.bronze import BRONZE_EVENTS, BRONZE_QUARANTINE
from behavior_lake.contracts.governance import AUDIT_LOG, ERASURE_REQUESTS, SUPPRESSION
from behavior_lake.contracts.silver import IDENTITY_MAP
from behavior_lake.governance.audit import AuditEvent, audit
from behavior_lake.governance.retention import data_files, vacuum_measured
from behavior_lake.lake import Lake
from behavior_lake.lake.base import local_file_path
from behavior_lake.lake.files import hadoop_delta_tables, is_object_store, spark_uri
from behavior_lake.ops import lease
from behavior_lake.privacy.fields import aes_key, decrypt_string, encrypt, raw_field
from behavior_lake.privacy.pseudonym import JUNK_IDS, anon_hash, user_person_id

log = logging.getLogger(__name__)
# Tables never erased from: the evidence of erasure itself.
KEEP = {ERASURE_REQUESTS.name, SUPPRESSION.name, AUDIT_LOG.name}
RAW_TABLES = (BRONZE_EVENTS.name, BRONZE_QUARANTINE.name)


def _key(settings: Settings) -> Column:
    return aes_key(settings.privacy.encryption_key)


def file_requests(
    lake: Lake,
    settings: Settings,
    user_ids: Sequence[str] = (),
    anonymous_ids: Sequence[str] = (),
) -> list[str]:
    """One pending request per id given; returns the request ids."""
    ids = [(check_subject_id(u, "--user-id"), None) for u in user_ids] + [
        (None, check_subject_id(a, "--anonymous-id")) for a in anonymous_ids
    ]
    if not ids:
        return []
    pk = settings.privacy.pseudonym_key
    rows = [(f"er-{uuid.uuid4().hex[:12]}", u, a) for u, a in ids]
    df = lake.spark.createDataFrame(rows, "request_id string, u string, a string")
    key = _key(settings)
    out = df.select(
        "request_id",
        F.when(F.col("u").isNotNull(), F.sha2(user_person_id(F.col("u"), pk), 256)).alias(
            "person_id_sha"
        ),
        F.when(F.col("a").isNotNull(), F.sha2(anon_hash(F.col("a"), pk), 256)).alias(
            "anonymous_id_sha"
        ),
        F.when(F.col("u").isNotNull(), encrypt(F.col("u"), key)).alias("user_id_enc"),
        F.when(F.col("a").isNotNull(), encrypt(F.col("a"), key)).alias("anonymous_id_enc"),
        F.current_timestamp().alias("requested_at"),
        F.lit("pending").alias("status"),
        F.lit(None).cast("timestamp").alias("processed_at"),
        F.lit(None).cast("long").alias("rows_deleted"),
        F.lit(None).cast("array<string>").alias("tables_touched"),
        F.lit(None).cast("string").alias("detail"),
    )
    lake.ensure(ERASURE_REQUESTS.name)
    lake.append(ERASURE_REQUESTS.name, out)
    log.info("erasure: filed %d request(s)", len(rows))
    return [r[0] for r in rows]


@dataclass
class Subject:
    request_id: str
    persons: set[str] = field(default_factory=set)
    anons: set[str] = field(default_factory=set)
    raw_ids: set[str] = field(default_factory=set)  # known raw ids (decrypted)


@dataclass
class ErasureResult:
    request_id: str
    status: str
    rows_deleted: int = 0
    per_table: dict[str, int] = field(default_factory=dict)
    files_removed: int = 0
    detail: str = ""


def resolve(lake: Lake, settings: Settings, req) -> Subject:
    s = Subject(req["request_id"])
    if req["person_id"]:
        s.persons.add(req["person_id"])
    if req["anonymous_id_hash"]:
        s.anons.add(req["anonymous_id_hash"])
    for raw in (req["user_id"], req["anonymous_id"]):
        if raw:
            s.raw_ids.add(raw)
    if lake.exists(IDENTITY_MAP.name):
        m = lake.read(IDENTITY_MAP.name)
        linked = m.filter(
            F.col("person_id").isin(list(s.persons))
            | F.col("anonymous_id_hash").isin(list(s.anons))
        ).collect()
        for r in linked:  # one person's ids: small
            s.persons.add(r["person_id"])
            s.anons.add(r["anonymous_id_hash"])
    return s


_ID_KEYS = ("userId", "anonymousId", "previousId")


def _java_quote(text: str) -> str:
    """A literal for a Java regex (what Pattern.quote does)."""
    return "\\Q" + text.replace("\\E", "\\E\\\\E\\Q") + "\\E"


def raw_id_pattern(raw_id: str) -> str:
    """Java regex matching `"userId"|"anonymousId"|"previousId": "<raw_id>"` in a raw
    line, the id as a complete JSON string value (JSON-escaped as a producer writes it)."""
    keys = "|".join(_ID_KEYS)
    return f'"(?:{keys})"\\s*:\\s*' + _java_quote(json.dumps(raw_id, ensure_ascii=False))


def check_subject_id(raw_id: str | None, what: str) -> str:
    """A raw id an erasure or export may search for: not blank and not a placeholder
    that broken SDKs send for many people ("null", "0", "anonymous", ...)."""
    if raw_id is None or not raw_id.strip():
        raise ValueError(f"{what}: empty id refused")
    if raw_id.strip().lower() in JUNK_IDS:
        raise ValueError(
            f"{what}: {raw_id!r} is a placeholder id that many devices send; it identifies "
            "no one and is refused"
        )
    if raw_id != raw_id.strip():
        raise ValueError(f"{what}: {raw_id!r} has leading or trailing white space")
    return raw_id


def predicate(table: str, columns: Sequence[str], subj: Subject, key: str) -> Column | None:
    """Rows of `table` about the subject (None: the table holds no subject ids)."""
    persons, anons = list(subj.persons) or [""], list(subj.anons) or [""]
    conds: list[Column] = []
    if table in RAW_TABLES:
        user = F.col("user_id")
        anon = F.col("anonymous_id")
        prev = F.col("previous_id") if "previous_id" in columns else F.lit(None)
        if "raw_line" in columns:
            user = F.coalesce(user, raw_field("userId"))
            anon = F.coalesce(anon, raw_field("anonymousId"))
        conds += [
            user_person_id(user, key).isin(persons),
            anon_hash(anon, key).isin(anons),
            anon_hash(prev, key).isin(anons),
            user_person_id(prev, key).isin(persons),
        ]
        if table == BRONZE_QUARANTINE.name and subj.raw_ids:
            # lines that do not parse: the known raw ids as whole JSON id values, never
            # as substrings (an id "42" must not match "1422" or a price of 42)
            for raw in subj.raw_ids:
                conds.append(F.col("raw_line").rlike(raw_id_pattern(raw)))
    else:
        if "person_id" in columns:
            conds.append(F.col("person_id").isin(persons))
        if "anonymous_id_hash" in columns:
            conds.append(F.col("anonymous_id_hash").isin(anons))
    if not conds:
        return None
    out = F.lit(False)
    for c in conds:
        out = out | F.coalesce(c, F.lit(False))
    return out


TABLE_NAME = re.compile(r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$")


def known_tables(lake: Lake) -> set[str]:
    """The catalog's tables and every Delta table found under the lake root (a local
    disk, or S3 through Hadoop's FileSystem)."""
    names = set(lake.specs)
    root = lake.root.removeprefix("file://")
    if is_object_store(root):
        names |= {n for n in hadoop_delta_tables(lake.spark, root) if TABLE_NAME.match(n)}
    elif "://" not in root and os.path.isdir(root):
        for layer in os.listdir(root):
            d = os.path.join(root, layer)
            if not os.path.isdir(d) or layer.startswith((".", "_")):
                continue
            for t in os.listdir(d):
                name = f"{layer}.{t}"
                if os.path.isdir(os.path.join(d, t, "_delta_log")) and TABLE_NAME.match(name):
                    names.add(name)
    return names


def subject_tables(lake: Lake) -> list[tuple[str, list[str]]]:
    """Existing tables that can hold rows about a person."""
    out = []
    for name in sorted(known_tables(lake)):
        if name in KEEP or not lake.exists(name):
            continue
        cols = lake.schema(name).fieldNames()
        if name in RAW_TABLES or "person_id" in cols or "anonymous_id_hash" in cols:
            out.append((name, cols))
    return out


def leftover_files(lake: Lake, table: str) -> list[str]:
    """Data files on a local disk or on S3 that the current version does not reference."""
    on_disk = data_files(lake, table)
    if not on_disk:
        return []
    if is_object_store(lake.path(table)):
        active = {unquote(spark_uri(p)) for p in lake.active_files(table)}
        return sorted(p for p in on_disk if unquote(p) not in active)
    active = {local_file_path(p) for p in lake.active_files(table)}
    return sorted(p for p in on_disk if os.path.normpath(p) not in active)


def verify(
    lake: Lake, subj: Subject, tables: Sequence[tuple[str, list[str]]], key: str
) -> list[str]:
    """Problems found (empty = the subject is gone from the touched tables' files)."""
    problems = []
    for name, cols in tables:
        cond = predicate(name, cols, subj, key)
        if cond is not None:
            left = lake.read(name).filter(cond).count()
            if left:
                problems.append(f"{name}: {left} row(s) still match")
        extra = leftover_files(lake, name)
        if extra:
            problems.append(f"{name}: {len(extra)} unreferenced data file(s) still on disk")
    return problems


def _pending(lake: Lake, settings: Settings) -> list:
    if not lake.exists(ERASURE_REQUESTS.name):
        return []
    key = _key(settings)
    pk = settings.privacy.pseudonym_key
    reqs = lake.read(ERASURE_REQUESTS.name).filter(F.col("status") == "pending")
    dec = lambda c: decrypt_string(F.col(c), key)  # noqa: E731
    raw = reqs.select(
        "request_id",
        dec("user_id_enc").alias("user_id"),
        dec("anonymous_id_enc").alias("anonymous_id"),
    )
    return raw.select(
        "request_id",
        "user_id",
        "anonymous_id",
        user_person_id(F.col("user_id"), pk).alias("person_id"),
        anon_hash(F.col("anonymous_id"), pk).alias("anonymous_id_hash"),
    ).collect()  # pending requests: a handful


def process_pending(lake: Lake, settings: Settings, run_id: str) -> list[ErasureResult]:
    """Every pending request at once: delete from every table (one rewrite each), purge
    and vacuum what was touched, verify nothing is left, suppress the ids, close."""
    pk = settings.privacy.pseudonym_key
    reqs = _pending(lake, settings)
    if not reqs:
        log.info("erasure: no pending request")
        return []
    tables = subject_tables(lake)
    log.info("erasure: %d pending request(s) over %d table(s)", len(reqs), len(tables))
    subjects = [resolve(lake, settings, r) for r in reqs]
    results = {s.request_id: ErasureResult(s.request_id, "done") for s in subjects}
    events: list[AuditEvent] = []
    union = Subject("all")
    for s in subjects:
        union.persons |= s.persons
        union.anons |= s.anons
        union.raw_ids |= s.raw_ids
    touched, deleted = _delete_subject_rows(lake, tables, union, pk, results, events)
    files = _purge_and_vacuum(lake, settings, run_id, touched, events)
    problems = verify(lake, union, [(n, c) for n, c in tables if n in touched], pk)
    for r in results.values():
        r.files_removed = files
        r.rows_deleted = sum(r.per_table.values())
        if problems:
            r.status, r.detail = "failed", "; ".join(problems)[:2000]
    _suppress(lake, subjects)
    _close(lake, settings, results, sorted(touched))
    verdict = "verified" if not problems else "; ".join(problems)
    events.append(AuditEvent("erasure", None, deleted, f"{len(results)} request(s): {verdict}"))
    audit(lake, settings.governance.actor, run_id, events)
    return list(results.values())


def _delete_subject_rows(
    lake: Lake,
    tables: list[tuple[str, list[str]]],
    union: Subject,
    pk: str,
    results: dict[str, ErasureResult],
    events: list[AuditEvent],
) -> tuple[set[str], int]:
    """Delete every row about the subjects (all pending at once: one rewrite per table);
    the tables touched and the rows deleted."""
    touched: set[str] = set()
    deleted = 0
    for i, (name, cols) in enumerate(tables, start=1):
        cond = predicate(name, cols, union, pk)
        if cond is None:
            continue
        n = lake.delete(name, cond).rows_deleted or 0
        log.info("[%d/%d] erasure: %s: %d row(s) deleted", i, len(tables), name, n)
        if n:
            deleted += n
            touched.add(name)
            events.append(AuditEvent("erase_rows", name, n, ",".join(sorted(results))))
            for r in results.values():
                r.per_table[name] = n  # one rewrite serves every pending request
    return touched, deleted


def _purge_and_vacuum(
    lake: Lake, settings: Settings, run_id: str, touched: set[str], events: list[AuditEvent]
) -> int:
    """Make the deleted rows leave the disk; the files removed."""
    files = 0
    # Files younger than any other running job may be its uncommitted writes: keep them
    # (the verification then reports leftovers, and the request is retried).
    keep_hours = (
        math.ceil(lease.oldest_other_run_hours(settings.lake.root, run_id, spark=lake.spark) * 100)
        / 100
    )
    if keep_hours:
        log.warning(
            "erasure: another job is running: vacuum keeps files of the last %sh", keep_hours
        )
    for name in sorted(touched):
        purged = lake.purge(name)  # deletion vectors: rewrite the files, then vacuum them
        if purged:
            events.append(AuditEvent("erase_purge", name, 1, "deletion vectors purged"))
        removed, _ = vacuum_measured(lake, name, keep_hours)
        files += removed
        events.append(AuditEvent("erase_vacuum", name, removed, "retention 0 h after erasure"))
    return files


def _suppress(lake: Lake, subjects: Sequence[Subject]) -> None:
    rows = [(p, "user", s.request_id) for s in subjects for p in s.persons]
    rows += [(a, "anonymous", s.request_id) for s in subjects for a in s.anons]
    if not rows:
        return
    df = lake.spark.createDataFrame(rows, "h string, kind string, request_id string")
    df = df.select(
        F.sha2("h", 256).alias("id_sha"),
        "kind",
        "request_id",
        F.current_timestamp().alias("added_at"),
    )
    lake.ensure(SUPPRESSION.name)
    lake.merge(SUPPRESSION.name, df.dropDuplicates(["id_sha"]), ["id_sha"], update_existing=False)


def _close(lake: Lake, settings: Settings, results: dict[str, ErasureResult], touched) -> None:
    rows = [
        (r.request_id, r.status, r.rows_deleted, touched, r.detail or None)
        for r in results.values()
    ]
    upd = lake.spark.createDataFrame(
        rows,
        T.StructType(
            [
                T.StructField("request_id", T.StringType()),
                T.StructField("status_new", T.StringType()),
                T.StructField("rows_new", T.LongType()),
                T.StructField("touched", T.ArrayType(T.StringType())),
                T.StructField("detail_new", T.StringType()),
            ]
        ),
    )
    cur = lake.read(ERASURE_REQUESTS.name).join(upd, "request_id")
    done = F.col("status_new") == "done"
    out = cur.select(
        "request_id",
        "person_id_sha",
        "anonymous_id_sha",
        # the raw ids are only kept (encrypted) until the request is done
        F.when(done, F.lit(None).cast("binary"))
        .otherwise(F.col("user_id_enc"))
        .alias("user_id_enc"),
        F.when(done, F.lit(None).cast("binary"))
        .otherwise(F.col("anonymous_id_enc"))
        .alias("anonymous_id_enc"),
        "requested_at",
        F.col("status_new").alias("status"),
        F.lit(datetime.now(UTC)).cast("timestamp").alias("processed_at"),
        F.col("rows_new").alias("rows_deleted"),
        F.col("touched").alias("tables_touched"),
        F.col("detail_new").alias("detail"),
    )
    lake.merge(ERASURE_REQUESTS.name, out, ["request_id"])
    # the old request rows (with encrypted ids) must leave the disk too
    vacuum_measured(lake, ERASURE_REQUESTS.name, 0)


def subject_rows(lake: Lake, settings: Settings, subj: Subject) -> dict[str, DataFrame]:
    """Every table's rows about the subject (used by the subject access export)."""
    out = {}
    for name, cols in subject_tables(lake):
        cond = predicate(name, cols, subj, settings.privacy.pseudonym_key)
        if cond is not None:
            out[name] = lake.read(name).filter(cond)
    return out
