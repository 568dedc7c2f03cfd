"""Per-stage pipeline benchmark: wall time, events/s, peak driver memory, scaling, and
side-by-side sessionization and erasure checks on the same silver files.

    python bench/pipeline_bench.py [--sizes 1000000,5000000] [--stages a,b,...]
                                   [--engines delta-spark,delta-rs]
                                   [--out DIR] [--skip-naive] [--keep] [--repeats N]

Every size runs on each engine (default: both when the Delta jars are cached), over the
same landing set into a lake of its own; `engine_ratio` in the JSON gives per size and
stage the seconds on delta-spark / the seconds on delta-rs.

For each size N (landing lines): generates the demo data set once (generator.users
scaled so that about N lines land; 42 days), then runs every stage in one warm Spark
session through the same job entry points as `make pipeline`:

  bronze          bronze_ingest            silver          silver_events
  sessions        silver.sessions recomputed from silver.events (silver.sessions.sessions:
                  session ids + one row per session, every row materialized)
  gold_features   gold_features --weeks 6  train_segments  train_segments
  assign_segments assign_segments          train_churn     train_churn
  score_churn     score_churn              retention       enforce_retention
  erasure_100     erase_subjects for 100 persons (one request each)

Per stage: wall time, events/s (landing lines / wall time, the pipeline's throughput
per event), peak RSS of the Python driver and of the driver JVM and peak JVM heap used
(sampled every 0.2 s while the stage runs). Then, on the silver.events files of the same
lake: sessionization ours vs DuckDB vs the naive collect_list + Python UDF (session
counts must agree; the median of --repeats warm runs each, every run kept in the JSON),
and the erasure of one subject from silver.events (rows rewritten and files replaced
against the table's size). With two sizes or more, the ratio
time(largest)/time(smallest) per stage (linear = the size ratio).

Writes bench/results/pipeline-<stamp>.json and .md (the README table).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # sessions_bench

from pyspark.sql import functions as F

from behavior_lake.catalog import open_lake
from behavior_lake.config import load_settings
from behavior_lake.jobs import registry
from behavior_lake.silver.sessions import sessions
from behavior_lake.spark import build_session, delta_spark_available
from sessions_bench import duckdb_ref, naive, ours

LINES_PER_PERSON = 300  # measured: 600 persons x 42 days -> ~173k landing lines
STAGES = (
    "bronze",
    "silver",
    "sessions",
    "gold_features",
    "train_segments",
    "assign_segments",
    "train_churn",
    "score_churn",
    "retention",
    "erasure_100",
)


class MemorySampler:
    """Peak RSS of this process and of the driver JVM, and peak JVM heap used."""

    def __init__(self, spark, every: float = 0.2) -> None:
        jvm = spark.sparkContext._jvm
        self._jvm_pid = int(jvm.java.lang.ProcessHandle.current().pid())
        self._mx = jvm.java.lang.management.ManagementFactory.getMemoryMXBean()
        self._every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.peak = {"python_rss_mb": 0.0, "jvm_rss_mb": 0.0, "jvm_heap_mb": 0.0}

    @staticmethod
    def _rss_mb(pid: int | str) -> float:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def _sample(self) -> None:
        vals = {
            "python_rss_mb": self._rss_mb("self"),
            "jvm_rss_mb": self._rss_mb(self._jvm_pid),
            "jvm_heap_mb": self._mx.getHeapMemoryUsage().getUsed() / 2**20,
        }
        for k, v in vals.items():
            self.peak[k] = max(self.peak[k], v)

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self._sample()
            except Exception:  # the JVM going away at the end must not kill the bench
                return

    def __enter__(self) -> MemorySampler:
        self._sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()


def _job(name: str, *extra: str) -> Callable[[list[str]], None]:
    def run(base: list[str]) -> None:
        rc, _ = registry()[name].run([*base, *extra])
        if rc != 0:
            raise RuntimeError(f"{name} exited with {rc}")

    return run


def _sessions_only(spark, settings) -> Callable[[list[str]], None]:
    def run(_base: list[str]) -> None:
        lake = open_lake(spark, settings)
        s = settings.silver
        out = sessions(
            lake.read("silver.events"),
            s.session_timeout_minutes,
            s.max_session_hours,
            s.engaged_min_seconds,
        )
        out.write.format("noop").mode("overwrite").save()

    return run


def stage_runners(spark, settings) -> dict[str, Callable[[list[str]], None]]:
    tasks = settings.pipeline.tasks
    users = [f"u{i:07d}" for i in range(100)]
    return {
        "bronze": _job("bronze_ingest"),
        "silver": _job("silver_events"),
        "sessions": _sessions_only(spark, settings),
        "gold_features": _job("gold_features", *tasks["gold_features"].args),
        "train_segments": _job("train_segments"),
        "assign_segments": _job("assign_segments"),
        "train_churn": _job("train_churn"),
        "score_churn": _job("score_churn"),
        "retention": _job("enforce_retention"),
        "erasure_100": _job("erase_subjects", *[x for u in users for x in ("--user-id", u)]),
    }


def delta_files(path: str) -> list[str]:
    from deltalake import DeltaTable

    return list(DeltaTable(path).file_uris())


def _timed(fn: Callable[[], tuple[float, int]], repeats: int) -> tuple[float, int, list[float]]:
    """Median seconds, the (agreed) count and every run's seconds: one run of a 2-core
    machine varies by 15-30%, which decides ratios near their goals."""
    runs = [fn() for _ in range(max(1, repeats))]
    counts = {n for _, n in runs}
    if len(counts) != 1:
        raise RuntimeError(f"repeated runs disagree on the session count: {sorted(counts)}")
    secs = [round(t, 3) for t, _ in runs]
    return statistics.median(secs), runs[0][1], secs


def side_by_side(spark, settings, skip_naive: bool, repeats: int = 3) -> dict:
    """Sessionization ours vs DuckDB vs naive UDF on the silver.events files (medians of
    `repeats` warm runs each)."""
    lake = open_lake(spark, settings)
    files = delta_files(lake.path("silver.events"))
    out: dict = {"silver_events": lake.read("silver.events").count(), "silver_files": len(files)}
    ours(spark, files)  # warm
    runners: dict[str, Callable[[], tuple[float, int]]] = {
        "ours": lambda: ours(spark, files),
        "duckdb": lambda: duckdb_ref(files),
    }
    if not skip_naive:
        runners["naive"] = lambda: naive(spark, files)
    for name, run in runners.items():
        out[f"{name}_s"], out[f"{name}_sessions"], out[f"{name}_runs_s"] = _timed(run, repeats)
    out["ours_vs_duckdb"] = out["ours_s"] / out["duckdb_s"]
    if not skip_naive:
        out["naive_vs_ours"] = out["naive_s"] / out["ours_s"]
    out["same_session_counts"] = len({v for k, v in out.items() if k.endswith("_sessions")}) == 1
    return out


def erase_one(spark, settings) -> dict:
    """Delete one person from silver.events: only the files holding them are rewritten."""
    lake = open_lake(spark, settings)
    rows = lake.read("silver.events").count()
    files = len(delta_files(lake.path("silver.events")))
    person = lake.read("silver.events").select("person_id").limit(1).first()[0]
    t0 = time.monotonic()
    res = lake.delete("silver.events", F.col("person_id") == F.lit(person))
    return {
        "seconds": round(time.monotonic() - t0, 2),
        "table_rows": rows,
        "table_files": files,
        "rows_deleted": res.rows_deleted,
        "rows_rewritten": res.rows_written,
        "files_replaced": res.files_removed,
        "rewritten_share": (res.rows_written or 0) / max(rows, 1),
    }


def run_size(
    spark,
    n: int,
    work: str,
    stages: list[str],
    skip_naive: bool,
    repeats: int = 3,
    engine: str = "auto",
    compare: bool = True,
) -> dict:
    """Every stage over one landing set (generated by the first engine's run) into a lake
    of this engine's own; `compare` adds the side-by-side sessionization and erasure."""
    root = os.path.join(work, f"n{n}")
    users = max(50, round(n / LINES_PER_PERSON))
    conf = [
        f"lake.root={root}/lakehouse-{engine}",
        f"lake.engine={engine}",
        f"landing.root={root}/landing",
        f"landing.truth_root={root}/truth",
        f"generator.users={users}",
        f"mlflow.tracking_uri=sqlite:///{root}/mlruns/mlflow.db",
        f"mlflow.artifact_root={root}/mlruns/artifacts",
        "spark.ui_enabled=false",
    ]
    os.makedirs(f"{root}/mlruns", exist_ok=True)
    base = ["--env", "local", *[x for c in conf for x in ("--conf", c)]]
    settings = load_settings("local", conf)
    marker = Path(root) / "landing.lines"
    if marker.exists():  # generated for the previous engine
        lines, gen_s = int(marker.read_text()), 0.0
    else:
        t0 = time.monotonic()
        rc, rec = registry()["generate_events"].run(base)
        if rc != 0 or rec is None:
            raise RuntimeError("generate_events failed")
        gen_s = time.monotonic() - t0
        lines = int(rec.rows_out or 0)  # landing lines written
        marker.write_text(str(lines))
    print(
        f"size {n:,} on {engine}: {users:,} persons, {lines:,} landing lines "
        f"(generated in {gen_s:.0f} s)",
        flush=True,
    )
    row: dict = {
        "engine": engine,
        "target_events": n,
        "persons": users,
        "lines": lines,
        "generate_s": gen_s,
    }
    runners = stage_runners(spark, settings)
    row["stages"] = {}
    for name in stages:
        with MemorySampler(spark) as mem:
            t0 = time.monotonic()
            err = None
            try:
                runners[name](base)
            except Exception as exc:  # record and go on: later stages may still measure
                err = f"{type(exc).__name__}: {exc}"
            secs = time.monotonic() - t0
        rec = {
            "seconds": round(secs, 2),
            "events_per_s": round(lines / secs) if secs > 0 else None,
            **{k: round(v, 1) for k, v in mem.peak.items()},
        }
        if err:
            rec["error"] = err
        row["stages"][name] = rec
        if name == "sessions" and compare:  # on the fresh silver, before erasure/retention
            row["side_by_side"] = side_by_side(spark, settings, skip_naive, repeats)
            print(f"  side by side: {json.dumps(row['side_by_side'])}", flush=True)
        print(f"  {name:<16} {secs:8.1f} s {rec['events_per_s']:>10,} ev/s "
              f"py {rec['python_rss_mb']:.0f} MB jvm {rec['jvm_rss_mb']:.0f} MB "
              f"heap {rec['jvm_heap_mb']:.0f} MB{'  ERROR ' + err if err else ''}", flush=True)  # fmt: skip
    if not compare:
        return row
    if "side_by_side" not in row:
        row["side_by_side"] = side_by_side(spark, settings, skip_naive, repeats)
    row["side_by_side"]["erase_one"] = erase_one(spark, settings)
    print(f"  erase one: {json.dumps(row['side_by_side']['erase_one'])}", flush=True)
    return row


def engine_ratios(rows: list[dict]) -> dict:
    """Per size and stage: seconds on delta-spark / seconds on delta-rs."""
    by = {(r["lines"], r["engine"]): r for r in rows}
    out: dict = {}
    for (lines, engine), ds in sorted(by.items()):
        rs = by.get((lines, "delta-rs"))
        if engine != "delta-spark" or rs is None:
            continue
        out[str(lines)] = {
            name: round(rec["seconds"] / rs["stages"][name]["seconds"], 2)
            for name, rec in ds["stages"].items()
            if name in rs["stages"] and rs["stages"][name]["seconds"] > 0
        }
    return out


def scaling(rows: list[dict]) -> dict:
    if len(rows) < 2:
        return {}
    a, b = rows[0], rows[-1]
    out = {"size_ratio": round(b["lines"] / a["lines"], 2)}
    for name, rec in b["stages"].items():
        first = a["stages"].get(name)
        if first and first["seconds"] > 0:
            out[name] = round(rec["seconds"] / first["seconds"], 2)
    out["driver_python_rss_ratio"] = round(
        max(r["python_rss_mb"] for r in b["stages"].values())
        / max(r["python_rss_mb"] for r in a["stages"].values()),
        2,
    )
    return out


def markdown(doc: dict) -> str:
    rows = doc["results"]
    engines = sorted({r.get("engine", "delta-rs") for r in rows})
    if len(engines) > 1:
        out = ""
        for engine in engines:
            sub = [r for r in rows if r.get("engine", "delta-rs") == engine]
            part = {**doc, "results": sub, "scaling": doc.get("scaling", {}).get(engine)}
            out += f"\n### {engine}\n\n" + markdown(part)
        ratios = doc.get("engine_ratio", {})
        if ratios:
            stages = list(next(iter(ratios.values())))
            out += "\n### delta-spark / delta-rs (seconds)\n\n| lines | " + " | ".join(stages)
            out += " |\n|---|" + "---|" * len(stages) + "\n"
            for lines, rs in ratios.items():
                cells = " | ".join(str(rs.get(st, "-")) for st in stages)
                out += f"| {int(lines):,} | {cells} |\n"
        return out
    head = "| stage | " + " | ".join(
        f"{r['lines']:,} lines: s | ev/s | py/JVM RSS MB | heap MB" for r in rows
    )
    lines = [head + " |", "|---|" + "---|---|---|---|" * len(rows)]
    for name in rows[0]["stages"]:
        cells = []
        for r in rows:
            s = r["stages"].get(name)
            if s is None:
                cells += ["-"] * 4
                continue
            cells += [
                f"{s['seconds']:.1f}" + (" (failed)" if "error" in s else ""),
                f"{s['events_per_s']:,}",
                f"{s['python_rss_mb']:.0f} / {s['jvm_rss_mb']:.0f}",
                f"{s['jvm_heap_mb']:.0f}",
            ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    out = "\n".join(lines) + "\n"
    if doc.get("scaling"):
        sc = doc["scaling"]
        out += f"\nScaling time(largest)/time(smallest), size ratio {sc['size_ratio']}: " + ", ".join(
            f"{k} {v}" for k, v in sc.items() if k != "size_ratio"
        ) + "\n"  # fmt: skip
    for r in rows:
        if "side_by_side" not in r:
            continue
        sb = r["side_by_side"]
        out += (
            f"\nSide by side at {r['lines']:,} lines ({sb['silver_events']:,} silver events): "
            f"sessions (median of warm runs) ours {sb['ours_s']:.2f} s, DuckDB {sb['duckdb_s']:.2f} s "
            f"(ratio {sb['ours_vs_duckdb']:.1f})"
        )
        if "naive_s" in sb:
            out += f", naive UDF {sb['naive_s']:.2f} s (naive/ours {sb['naive_vs_ours']:.1f})"
        e = sb["erase_one"]
        out += (
            f"; same session counts: {sb['same_session_counts']}. Erasing one subject from "
            f"silver.events rewrote {e['rows_rewritten']:,} of {e['table_rows']:,} rows "
            f"({100 * e['rewritten_share']:.1f}%), {e['files_replaced']} of "
            f"{e['table_files']} files.\n"
        )
    return out


def write(doc: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    stamp = doc["at"]
    (out / f"pipeline-{stamp}.json").write_text(json.dumps(doc, indent=2, default=str))
    md = markdown(doc)
    (out / f"pipeline-{stamp}.md").write_text(md)
    print("\n" + md)


def merge(paths: list[str], out: Path) -> int:
    docs = [json.loads(Path(p).read_text()) for p in paths]
    rows = sorted((r for d in docs for r in d["results"]), key=lambda r: r["lines"])
    doc = {
        "benchmark": "pipeline_stages",
        "at": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
        "merged_from": [Path(p).name for p in paths],
        "machine": docs[-1]["machine"],
        "results": rows,
        "scaling": scaling(rows),
    }
    write(doc, out)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default=os.environ.get("SIZES", "1000000,5000000"))
    ap.add_argument("--stages", default=",".join(STAGES))
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument(
        "--engines",
        default=os.environ.get("ENGINES", ""),
        help="comma-separated lake engines, each over the same landing set (default: "
        "delta-spark,delta-rs when the Delta jars are cached, else delta-rs)",
    )
    ap.add_argument("--keep", action="store_true", help="keep the generated lakes")
    ap.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="warm runs of each side-by-side sessionization; the median is reported (default 3)",
    )
    ap.add_argument(
        "--merge",
        nargs="+",
        metavar="JSON",
        help="no run: combine earlier result files (sizes measured separately) into one "
        "table with scaling ratios",
    )
    args = ap.parse_args()
    if args.merge:
        return merge(args.merge, Path(args.out))
    sizes = sorted(int(x) for x in args.sizes.split(",") if x.strip())
    stages = [s for s in args.stages.split(",") if s]
    unknown = set(stages) - set(STAGES)
    if unknown:
        ap.error(f"--stages: unknown {sorted(unknown)}; expected some of {list(STAGES)}")
    settings = load_settings("local", ["spark.ui_enabled=false"])
    spark = build_session(settings)
    spark.sparkContext.setLogLevel("ERROR")
    engines = [e for e in args.engines.split(",") if e] or (
        ["delta-spark", "delta-rs"] if delta_spark_available(spark) else ["delta-rs"]
    )
    bad = set(engines) - {"delta-spark", "delta-rs"}
    if bad or ("delta-spark" in engines and not delta_spark_available(spark)):
        ap.error(f"--engines {args.engines}: expected delta-spark and/or delta-rs (delta-spark "
                 "needs the cached jars: make jars)")  # fmt: skip
    work = tempfile.mkdtemp(prefix="bl-pipeline-bench-")
    rows = []
    try:
        spark.range(1000).count()
        for n in sizes:
            for i, engine in enumerate(engines):
                rows.append(
                    run_size(spark, n, work, stages, args.skip_naive, args.repeats, engine, i == 0)
                )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"lakes kept under {work}")
    cpu = ""
    try:
        cpu = subprocess.run(
            ["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        pass
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    doc = {
        "benchmark": "pipeline_stages",
        "at": stamp,
        "machine": {
            "cores": os.cpu_count(),
            "cpu": cpu,
            "memory_gb": round(mem_gb, 1),
            "python": platform.python_version(),
            "spark": spark.version,
            "master": spark.sparkContext.master,
        },
        "engines": engines,
        "results": rows,
        "scaling": {e: scaling([r for r in rows if r["engine"] == e]) for e in engines},
        "engine_ratio": engine_ratios(rows),
    }
    spark.stop()
    write(doc, Path(args.out))
    ok = all(
        r["side_by_side"]["same_session_counts"] for r in rows if "side_by_side" in r
    ) and not any("error" in s for r in rows for s in r["stages"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
