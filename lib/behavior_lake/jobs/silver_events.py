"""Build silver: identity map, typed/deduplicated/consented events, rejects, sessions.

    python jobs/silver_events.py [--env local] [--conf key=value ...] [--full]

Steps (logged): identity stitching, conform (dedup, time sanity, taxonomy validation,
bots, consent), sessionization, write. Incremental by default: only persons touched by
bronze batches not processed yet are recomputed. --full recomputes every person.
"""

from __future__ import annotations

import argparse

from behavior_lake.contracts.bronze import BRONZE_EVENTS
from behavior_lake.contracts.governance import RETENTION_RUNS
from behavior_lake.contracts.silver import EVENTS, IDENTITY_MAP, REJECTS, SESSIONS, SILVER_BATCHES
from behavior_lake.contracts.taxonomy import load_taxonomy
from behavior_lake.runtime import JobContext, JobDef, out
from behavior_lake.silver.build import build_silver

JOB = "silver_events"


def run(ctx: JobContext, args) -> None:
    taxonomy = load_taxonomy(ctx.settings.conf_dir)
    st = build_silver(ctx.lake, ctx.settings, taxonomy, ctx.run_id, full=args.full)
    ctx.record.rows_in = st.bronze_rows
    ctx.record.rows_out = st.silver_rows
    ctx.count(
        new_batches=st.new_batches,
        affected_persons=st.affected_persons,
        bronze_rows=st.bronze_rows,
        silver_rows=st.silver_rows,
        reject_rows=st.reject_rows,
        duplicate_rows=st.duplicate_rows,
        consent_dropped_rows=st.consent_dropped_rows,
        sessions=st.sessions,
        identity_links=st.identity_links,
        capped_links=st.capped_links,
        flagged_rows=st.flagged_rows,
        **{f"reject_{k}": v for k, v in st.reasons.items()},
        **{f"flag_{k.replace(':', '_')}": v for k, v in st.findings.items()},
    )


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--full",
        action="store_true",
        help="recompute every person (default: only those new data touches)",
    )


JOB_DEF = JobDef(
    name=JOB,
    description=__doc__.strip().splitlines()[0],
    inputs=(BRONZE_EVENTS.name, IDENTITY_MAP.name, SILVER_BATCHES.name),
    feedback=(RETENTION_RUNS.name,),  # where bronze's window now starts
    outputs=(
        out(EVENTS, "replace", "replace_keys"),
        out(SESSIONS.name, "replace", "replace_keys"),
        out(REJECTS.name, "replace", "replace_keys", "replace_partitions"),
        out(IDENTITY_MAP.name, "replace"),
        out(SILVER_BATCHES.name, "append"),
    ),
    body=run,
    arguments=_arguments,
)

cli = JOB_DEF.cli  # the entry point: jobs/<name>.py, spark-submit, Databricks
