"""Lake write/read throughput and driver memory per size.

    python bench/lake_bench.py [--sizes 1000000,5000000] [--engine delta-rs] [--out DIR]

For each size N: append N synthetic event rows (partitioned by date) through the Lake,
then read them back (full scan: count + sums). Prints rows/s and the peak RSS of the
Python driver and of the driver JVM after each size (peaks only grow, sizes run small
to large, so a flat peak means memory does not scale with the data), and saves JSON
under bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from pyspark.sql import functions as F
from pyspark.sql import types as T

from behavior_lake.config import load_settings
from behavior_lake.lake import TableSpec, choose_engine, make_lake
from behavior_lake.spark import build_session

SCHEMA = T.StructType(
    [
        T.StructField("event_id", T.LongType()),
        T.StructField("person_id", T.StringType()),
        T.StructField("event_name", T.StringType()),
        T.StructField("event_ts", T.TimestampType()),
        T.StructField("revenue", T.DecimalType(18, 2)),
        T.StructField("event_date", T.DateType()),
    ]
)


def synthetic(spark, n: int):
    ts = F.timestamp_seconds(F.lit(1_767_225_600) + (F.col("id") * 37) % (30 * 86400))
    return spark.range(n).select(
        F.col("id").alias("event_id"),
        F.sha2((F.col("id") % 50_000).cast("string"), 256).substr(1, 32).alias("person_id"),
        F.element_at(
            F.array(
                *[
                    F.lit(x)
                    for x in ("page_viewed", "product_viewed", "product_added", "order_completed")
                ]
            ),
            (F.col("id") % 4 + 1).cast("int"),
        ).alias("event_name"),
        ts.alias("event_ts"),
        ((F.col("id") % 1000) / 10).cast("decimal(18,2)").alias("revenue"),
        F.to_date(ts).alias("event_date"),
    )


def python_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def jvm_stats(spark) -> dict[str, float]:
    jvm = spark.sparkContext._jvm
    pid = int(jvm.java.lang.ProcessHandle.current().pid())
    peak = 0.0
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    heap = jvm.java.lang.management.ManagementFactory.getMemoryMXBean().getHeapMemoryUsage()
    return {"jvm_peak_rss_mb": round(peak, 1), "jvm_heap_used_mb": round(heap.getUsed() / 2**20, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=os.environ.get("SIZES", "1000000,5000000"))
    ap.add_argument("--engine", default="auto")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    sizes = [int(x) for x in args.sizes.split(",") if x.strip()]
    settings = load_settings("local", ["spark.ui_enabled=false"])
    spark = build_session(settings)
    spark.sparkContext.setLogLevel("ERROR")
    engine = choose_engine(spark, args.engine)
    work = tempfile.mkdtemp(prefix="bl-bench-")
    results = []
    print(
        f"engine={engine} cores={os.cpu_count()} spark={spark.version} master={spark.sparkContext.master}"
    )
    print(
        f"{'rows':>10} {'write s':>8} {'write rows/s':>13} {'read s':>7} {'read rows/s':>12} "
        f"{'py peak MB':>10} {'jvm peak MB':>11}"
    )
    try:
        spark.range(1000).count()  # warm the JVM once, outside the timings
        for n in sizes:
            lake = make_lake(spark, work, engine)
            name = f"bench.events_{n}"
            lake.create(TableSpec(name, SCHEMA, ("event_date",), unkeyed="benchmark rows"))
            t0 = time.perf_counter()
            res = lake.append(name, synthetic(spark, n))
            write_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            agg = (
                lake.read(name)
                .agg(F.count(F.lit(1)).alias("n"), F.sum("revenue"), F.countDistinct("event_date"))
                .first()
            )
            read_s = time.perf_counter() - t0
            assert agg["n"] == n == res.rows_written, (agg, res)
            row = {
                "rows": n,
                "engine": engine,
                "files": res.files_added,
                "write_s": round(write_s, 2),
                "write_rows_per_s": round(n / write_s),
                "read_s": round(read_s, 2),
                "read_rows_per_s": round(n / read_s),
                "python_peak_rss_mb": round(python_peak_mb(), 1),
                **jvm_stats(spark),
            }
            results.append(row)
            print(
                f"{n:>10} {write_s:>8.2f} {row['write_rows_per_s']:>13,} {read_s:>7.2f} "
                f"{row['read_rows_per_s']:>12,} {row['python_peak_rss_mb']:>10.1f} "
                f"{row['jvm_peak_rss_mb']:>11.1f}"
            )
            shutil.rmtree(lake.path(name), ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        spark.stop()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"lake-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(
        json.dumps(
            {
                "benchmark": "lake_write_read",
                "machine": {
                    "cores": os.cpu_count(),
                    "python": platform.python_version(),
                    "platform": platform.platform(),
                },
                "results": results,
            },
            indent=2,
        )
    )
    print(f"saved {path}")


if __name__ == "__main__":
    main()
