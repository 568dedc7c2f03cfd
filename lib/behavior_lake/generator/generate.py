"""Spark-parallel, seed-deterministic landing generator.

Persons are spread over Spark tasks; each task simulates its persons and emits
(file, arrival, line) records; files are then written by executors grouped by
`<YYYY-MM-DD>/<HH>/events-<shard>.jsonl[.gz]`, lines in arrival order. The planted
truth (archetype, churn day, devices, consent, faults) goes to `<truth_root>/users/`.
Executors write with plain Python file I/O: the landing and truth roots must be a
local or mounted path (e.g. /dbfs/... on Databricks).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from pyspark.sql import SparkSession

from behavior_lake.config import GeneratorSettings
from behavior_lake.generator.simulate import (
    FaultConfig,
    deliver,
    expected_lifts,
    person_truth,
    simulate_person,
)

log = logging.getLogger(__name__)
SHARDS_PER_HOUR = 2


@dataclass(frozen=True)
class GenerateResult:
    persons: int
    lines: int
    files: int


def _file_name(day: str, hour: int, shard: int, seed: int, gzip_share: float) -> str:
    base = f"{day}/{hour:02d}/events-{seed}-{shard:02d}.jsonl"
    h = int(hashlib.sha1(base.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return base + (".gz" if h < gzip_share else "")


def _person_records(idx: int, g: GeneratorSettings) -> Iterator[tuple[str, str, str]]:
    """('line', file, sortkey\tline) records and one ('truth', '', json) record."""
    start = date.fromisoformat(g.start_date)
    f = g.faults
    faults = FaultConfig(
        f.malformed_json,
        f.truncated_line,
        f.missing_field,
        f.wrong_type,
        f.unknown_event,
        f.duplicate,
        f.late,
        f.future_timestamp,
        f.undeclared_property,
        g.max_late_days,
    )
    person, msgs = simulate_person(
        g.seed, idx, start, g.days, g.bot_share, g.experiments, g.cross_variation_share
    )
    rng = random.Random(f"{g.seed}:{idx}:delivery")
    for msg in msgs:
        for received, line in deliver(msg, rng, faults, person):
            name = _file_name(
                received.strftime("%Y-%m-%d"),
                received.hour,
                idx % SHARDS_PER_HOUR,
                g.seed,
                g.gzip_share,
            )
            yield ("line", name, f"{received.isoformat()}\t{idx:09d}\t{line}")
    yield ("truth", "", json.dumps(person_truth(person), default=str))


def _write_partition(root: str, rows: Iterator) -> Iterator[tuple[str, int]]:
    current, buf = None, []

    def flush() -> tuple[str, int] | None:
        if current is None:
            return None
        buf.sort()
        path = os.path.join(root, current)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        data = ("\n".join(r.split("\t", 2)[2] for r in buf) + "\n").encode("utf-8")
        if current.endswith(".gz"):
            with open(path, "wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0) as gz:
                gz.write(data)
        else:
            with open(path, "wb") as fh:
                fh.write(data)
        return (current, len(buf))

    for file_name, payload in rows:
        if file_name != current:
            done = flush()
            if done:
                yield done
            current, buf = file_name, []
        buf.append(payload)
    done = flush()
    if done:
        yield done


def write_experiment_truth(g: GeneratorSettings, folder: str) -> str:
    """experiments.json: each planted experiment, its control (the first variation),
    planned shares and the expected relative lift per metric (`expected_lifts`)."""
    out = []
    for exp in g.experiments:
        shares = exp.shares or [1.0] * len(exp.variations)
        expected = expected_lifts(exp)
        out.append(
            {
                "experiment_id": exp.id,
                "experiment_name": exp.name or exp.id,
                "start_day": exp.start_day,
                "control": exp.variations[0],
                "variations": exp.variations,
                "planned_shares": [x / sum(shares) for x in shares],
                "effects": exp.effects,
                "expected_relative_lift": expected,
                "lost_exposure_share": exp.lost_exposure_share,
                "srm_expected": exp.lost_exposure_share > 0,
            }
        )
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, "experiments.json")
    with open(path, "w") as fh:
        json.dump(
            {"cross_variation_share": g.cross_variation_share, "experiments": out}, fh, indent=2
        )
    log.info("planted %d experiment(s); truth in %s", len(out), path)
    return path


def generate(
    spark: SparkSession,
    g: GeneratorSettings,
    landing_root: str,
    truth_root: str,
    clean: bool = True,
) -> GenerateResult:
    if clean:
        for root in (landing_root, truth_root):
            shutil.rmtree(root, ignore_errors=True)
    os.makedirs(landing_root, exist_ok=True)
    landing_abs = os.path.abspath(landing_root)
    log.info(
        "generating %d person(s) over %d day(s) from %s (seed %d) into %s",
        g.users,
        g.days,
        g.start_date,
        g.seed,
        landing_abs,
    )
    records = (
        spark.sparkContext.parallelize(range(g.users), max(1, g.partitions))
        .flatMap(lambda i: _person_records(i, g))
        .cache()
    )
    lines = records.filter(lambda r: r[0] == "line").map(lambda r: (r[1], r[2]))
    n_files = max(1, g.partitions)
    written = (
        lines.partitionBy(n_files, lambda name: int(hashlib.md5(name.encode()).hexdigest()[:8], 16))
        .mapPartitions(lambda it: _write_partition(landing_abs, iter(sorted(it))))
        .collect()  # one (file, lines) pair per file: small
    )
    truth_dir = os.path.join(os.path.abspath(truth_root), "users")
    os.makedirs(truth_dir, exist_ok=True)
    persons = 0
    with open(os.path.join(truth_dir, "users.jsonl"), "w") as fh:
        for payload in (
            records.filter(lambda r: r[0] == "truth").map(lambda r: r[2]).toLocalIterator()
        ):
            fh.write(payload + "\n")
            persons += 1
    records.unpersist()
    if g.experiments:
        write_experiment_truth(g, os.path.join(os.path.abspath(truth_root), "experiments"))
    total = sum(n for _, n in written)
    log.info(
        "wrote %d line(s) in %d file(s); truth for %d person(s) in %s",
        total,
        len(written),
        persons,
        truth_dir,
    )
    return GenerateResult(persons=persons, lines=total, files=len(written))
