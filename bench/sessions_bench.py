"""Sessionization side by side on the same parquet files: ours vs DuckDB vs naive UDF.

    python bench/sessions_bench.py [--sizes 1000000,5000000] [--out DIR] [--skip-naive]

For each size N: writes N silver-like events once (person_id, event_ts, message_id;
20k persons per million events, sessions of a few events with gaps under the timeout,
30+ minute gaps between sessions), then times with a warm JVM:
  ours    behavior_lake.silver.sessions.session_spans: one row per session (start, end,
          events, is_split) from events pre-aggregated into timeout-wide buckets before the
          shuffle (the path silver.sessions takes from stored events), counted
  duckdb  the same rule in SQL (lag + running sum) over the same parquet files
  naive   groupBy(person) + collect_list + a Python UDF that sorts and splits (the
          tutorial approach)
and checks that all three find the same number of sessions. JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from pyspark.sql import Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from behavior_lake.config import load_settings
from behavior_lake.silver.sessions import session_spans
from behavior_lake.spark import build_session

TIMEOUT_MIN = 30
MAX_HOURS = 24


def write_events(spark, n: int, path: str) -> None:
    persons = max(1, n // 50)
    # per person: event k; every 6th event starts a new session 1-3 hours later,
    # other events follow 10-300 s apart (deterministic from ids)
    df = spark.range(n).select(
        (F.col("id") % persons).alias("p"), (F.col("id") / persons).cast("long").alias("k")
    )
    step = F.when(F.col("k") % 6 == 0, 3600 + (F.col("p") * 7 + F.col("k") * 13) % 7200).otherwise(
        10 + (F.col("p") * 11 + F.col("k") * 17) % 290
    )
    df = df.withColumn("step", step)
    offset = F.sum("step").over(Window.partitionBy("p").orderBy("k"))
    out = df.select(
        F.sha2(F.col("p").cast("string"), 256).substr(1, 32).alias("person_id"),
        F.timestamp_seconds(F.lit(1_767_225_600) + offset).alias("event_ts"),
        F.format_string("m%012d", F.col("p") * 1_000_000 + F.col("k")).alias("message_id"),
    )
    out.repartition(8).write.mode("overwrite").parquet(path)


def _files(path: str | list[str]) -> list[str]:
    return [path] if isinstance(path, str) else list(path)


def ours(spark, path: str | list[str]) -> tuple[float, int]:
    """One row per session (as silver.sessions), counted."""
    t0 = time.monotonic()
    ev = spark.read.parquet(*_files(path)).select("person_id", "event_ts")
    n = session_spans(ev, TIMEOUT_MIN, MAX_HOURS).count()
    return time.monotonic() - t0, int(n)


def duckdb_ref(path: str | list[str]) -> tuple[float, int]:
    import duckdb

    files = [f"{p}/*.parquet" if os.path.isdir(p) else p for p in _files(path)]
    source = "read_parquet([" + ", ".join(f"'{f}'" for f in files) + "])"

    con = duckdb.connect()
    con.execute("PRAGMA threads=2")
    t0 = time.monotonic()
    n = con.execute(
        f"""
        WITH g AS (
          SELECT person_id, event_ts,
                 CASE WHEN lag(event_ts) OVER w IS NULL
                        OR epoch(event_ts) - epoch(lag(event_ts) OVER w) > {TIMEOUT_MIN * 60}
                      THEN 1 ELSE 0 END AS start
          FROM {source}
          WINDOW w AS (PARTITION BY person_id ORDER BY event_ts, message_id)
        ), r AS (
          SELECT person_id, sum(start) OVER (PARTITION BY person_id ORDER BY event_ts
                 ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS run
          FROM g
        )
        SELECT count(*) FROM (SELECT DISTINCT person_id, run FROM r)
        """
    ).fetchone()[0]
    return time.monotonic() - t0, int(n)


def naive(spark, path: str | list[str]) -> tuple[float, int]:
    def count_sessions(ts: list) -> int:
        ts = sorted(ts)
        n, prev = 0, None
        for t in ts:
            if prev is None or (t - prev).total_seconds() > TIMEOUT_MIN * 60:
                n += 1
            prev = t
        return n

    udf = F.udf(count_sessions, T.IntegerType())
    t0 = time.monotonic()
    ev = spark.read.parquet(*_files(path))
    n = (
        ev.groupBy("person_id")
        .agg(F.collect_list("event_ts").alias("ts"))
        .select(udf("ts").alias("n"))
        .agg(F.sum("n"))
        .first()[0]
    )
    return time.monotonic() - t0, int(n)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000000,5000000")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--skip-naive", action="store_true")
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",")]
    settings = load_settings("local", ["spark.ui_enabled=false"])
    spark = build_session(settings)
    spark.sparkContext.setLogLevel("ERROR")
    tmp = tempfile.mkdtemp(prefix="sessions-bench-")
    results = []
    try:
        warm = os.path.join(tmp, "warm")
        write_events(spark, 50_000, warm)
        ours(spark, warm)
        duckdb_ref(warm)
        for n in sizes:
            path = os.path.join(tmp, f"n{n}")
            write_events(spark, n, path)
            row: dict = {"events": n}
            row["ours_s"], row["ours_sessions"] = ours(spark, path)
            row["duckdb_s"], row["duckdb_sessions"] = duckdb_ref(path)
            if not args.skip_naive:
                row["naive_s"], row["naive_sessions"] = naive(spark, path)
            row["ours_events_per_s"] = n / row["ours_s"]
            row["ours_vs_duckdb"] = row["ours_s"] / row["duckdb_s"]
            if "naive_s" in row:
                row["naive_vs_ours"] = row["naive_s"] / row["ours_s"]
            counts = {row[k] for k in row if k.endswith("_sessions")}
            row["same_session_counts"] = len(counts) == 1
            results.append(row)
            print(json.dumps(row), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        spark.stop()
    print(f"\n{'events':>10} {'ours s':>8} {'ev/s':>10} {'duckdb s':>9} {'ours/duck':>9} "
          f"{'naive s':>8} {'naive/ours':>10} same")  # fmt: skip
    for r in results:
        print(
            f"{r['events']:>10} {r['ours_s']:>8.2f} {r['ours_events_per_s']:>10.0f} "
            f"{r['duckdb_s']:>9.2f} {r['ours_vs_duckdb']:>9.2f} "
            f"{r.get('naive_s', float('nan')):>8.2f} {r.get('naive_vs_ours', float('nan')):>10.2f} "
            f"{r['same_session_counts']}"
        )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    doc = {
        "benchmark": "sessionization",
        "at": stamp,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "results": results,
    }
    (out / f"sessions-{stamp}.json").write_text(json.dumps(doc, indent=2))
    return 0 if all(r["same_session_counts"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
