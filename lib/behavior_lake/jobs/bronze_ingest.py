"""Ingest new landing files into bronze.events / bronze.quarantine.

python jobs/bronze_ingest.py [--env local] [--conf key=value ...] [--max-files N]
"""

from __future__ import annotations

import argparse

from behavior_lake.bronze.ingest import ingest
from behavior_lake.contracts.bronze import (
    BRONZE_EVENTS,
    BRONZE_QUARANTINE,
    INGEST_BATCHES,
    INGESTED_FILES,
    SCHEMA_DRIFT,
)
from behavior_lake.contracts.governance import SUPPRESSION
from behavior_lake.contracts.taxonomy import load_taxonomy
from behavior_lake.runtime import LANDING, JobContext, JobDef, out

JOB = "bronze_ingest"


def run(ctx: JobContext, args) -> None:
    settings = ctx.settings
    if args.max_files is not None:
        from dataclasses import replace

        settings = replace(
            settings, bronze=replace(settings.bronze, max_files_per_batch=args.max_files)
        )
    taxonomy = load_taxonomy(settings.conf_dir)
    batches = ingest(ctx.lake, settings, taxonomy, ctx.run_id)
    lines = sum(b.lines_read for b in batches)
    ctx.record.rows_in = lines
    ctx.record.rows_out = sum(b.bronze_rows for b in batches)
    ctx.count(
        batches=len(batches),
        files=sum(b.files for b in batches),
        lines_read=lines,
        bronze_rows=ctx.record.rows_out,
        quarantined_rows=sum(b.quarantined_rows for b in batches),
        sampled_out_rows=sum(b.sampled_out_rows for b in batches),
        unreadable_files=sum(b.unreadable_files for b in batches),
        unexpected_files=sum(b.unexpected_files for b in batches),
        drift_findings=sum(b.drift_rows for b in batches),
    )


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-files",
        type=int,
        default=None,
        help="files per batch (overrides bronze.max_files_per_batch; 0 = all)",
    )


JOB_DEF = JobDef(
    name=JOB,
    description=__doc__.strip().splitlines()[0],
    inputs=(LANDING, INGESTED_FILES.name),
    feedback=(SUPPRESSION.name,),  # ids erased by earlier runs: their new lines are dropped
    outputs=(
        out(BRONZE_EVENTS.name, "append", "delete"),
        out(BRONZE_QUARANTINE.name, "append", "delete"),
        out(INGESTED_FILES.name, "append"),
        out(INGEST_BATCHES.name, "append", "delete"),
        out(SCHEMA_DRIFT.name, "append", "delete"),
    ),
    body=run,
    arguments=_arguments,
)

cli = JOB_DEF.cli  # the entry point: jobs/<name>.py, spark-submit, Databricks
