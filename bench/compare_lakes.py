"""Compare two lakes table by table, row for row, run metadata aside.

    python bench/compare_lakes.py LAKE_A LAKE_B [--env local]

For refactors that must not change behaviour: build the demo lake before and after
(`make clean && make run`, then copy `lakehouse/`) and compare. Columns that name or
time the run that wrote a row (run ids, batch ids, timestamps of writing) differ by
design and are left out; encrypted PII is compared decrypted. Prints one line per
table and exits 1 when any table differs.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from pyspark.sql import functions as F

from behavior_lake.catalog import resolve
from behavior_lake.config import load_settings
from behavior_lake.lake import make_lake
from behavior_lake.lake.base import has_map
from behavior_lake.spark import build_session

# written-when / written-by columns: differ between two runs of the same data
RUN_COLUMNS = {
    "ingested_at", "ingest_batch_id", "batch_id", "run_id", "processed_at", "computed_at",
    "updated_at", "learned_at", "scored_at", "started_at", "ended_at", "at", "run_at",
    "detected_at", "rejected_at", "requested_at", "compared_at", "recorded_at",
    "modified_at", "pipeline_run_id", "request_id", "error", "metrics", "observed",
    "detail", "bytes_freed", "files_removed", "ingest_date",
}  # fmt: skip


def comparable(df, key_hex: str):
    key = F.unhex(F.lit(key_hex))
    cols = []
    for f in df.schema.fields:
        if f.name in RUN_COLUMNS:
            continue
        col = F.col(f"`{f.name}`")
        if f.name == "pii":
            col = F.transform_values(
                col, lambda _k, v: F.aes_decrypt(F.unbase64(v), key, F.lit("GCM")).cast("string")
            )
        if has_map(f.dataType):
            col = F.to_json(col)
        cols.append(col.alias(f.name))
    return df.select(*cols)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--env", default="local")
    args = parser.parse_args(argv)
    settings = load_settings(args.env, [f"lake.root={args.a}"])
    spark = build_session(settings)
    specs = resolve(settings)
    lakes = [make_lake(spark, root, "delta-spark", specs) for root in (args.a, args.b)]
    names = sorted(
        f"{layer}.{t}"
        for layer in os.listdir(args.a)
        for t in os.listdir(Path(args.a) / layer)
        if (Path(args.a) / layer / t / "_delta_log").is_dir()
    )
    differing = 0
    for name in names:
        if not lakes[1].exists(name):
            print(f"{name}: missing in {args.b}")
            differing += 1
            continue
        left, right = (comparable(lk.read(name), settings.privacy.encryption_key) for lk in lakes)
        only_a, only_b = left.exceptAll(right).count(), right.exceptAll(left).count()
        verdict = "identical" if not (only_a or only_b) else f"DIFFERS ({only_a} / {only_b})"
        differing += bool(only_a or only_b)
        print(f"{name}: {left.count()} / {right.count()} rows, {verdict}", flush=True)
    print(f"{len(names) - differing} of {len(names)} tables identical")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
