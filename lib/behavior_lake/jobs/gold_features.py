"""Build gold.user_features snapshots (+ feature_catalog, path_vocabulary, ops.feature_drift).

    python jobs/gold_features.py [--env local] [--as-of DATE ...]
                                 [--from-date DATE] [--to-date DATE] [--weeks N]
                                 [--relearn-vocabulary] [--conf key=value ...]

Without dates: one snapshot as of the day after the last silver event ("now"). With
--from-date/--to-date: a series every gold.features.snapshot_interval_days days, anchored
at --to-date (default: that same "now"). Each snapshot only sees events before its
as_of_date. Reruns replace the snapshots they build (idempotent); other snapshots stay.
"""

from __future__ import annotations

import argparse

from behavior_lake.contracts.gold import CATALOG, DRIFT, PATH_VOCABULARY, USER_FEATURES
from behavior_lake.contracts.silver import EVENTS, SESSIONS
from behavior_lake.contracts.taxonomy import load_taxonomy
from behavior_lake.gold.build import build_features, resolve_as_of
from behavior_lake.runtime import JobContext, JobDef, iso_date, out

JOB = "gold_features"


def run(ctx: JobContext, args) -> None:
    taxonomy = load_taxonomy(ctx.settings.conf_dir)
    dates = resolve_as_of(
        ctx.lake,
        ctx.settings,
        [d for d in args.as_of if d],
        args.from_date,
        args.to_date,
        args.weeks,
    )
    st = build_features(
        ctx.lake, ctx.settings, taxonomy, dates, relearn_vocabulary=args.relearn_vocabulary
    )
    ctx.record.rows_out = st.rows
    ctx.count(
        snapshots=len(st.as_of_dates),
        feature_rows=st.rows,
        features=st.features,
        vocabulary=st.vocabulary_size,
        drift_flagged=st.drift_flagged,
    )


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--as-of", type=iso_date, action="append", default=[], metavar="DATE",
        help="snapshot date YYYY-MM-DD (repeatable); events before it count",
    )  # fmt: skip
    parser.add_argument("--from-date", type=iso_date, help="first date of a snapshot series")
    parser.add_argument("--to-date", type=iso_date, help="last date of a snapshot series")
    parser.add_argument(
        "--weeks",
        type=int,
        help="build the last N snapshots (one per snapshot interval) up to --to-date or now",
    )
    parser.add_argument(
        "--relearn-vocabulary",
        action="store_true",
        help="learn gold.path_vocabulary again (changes what the path_* slots count)",
    )


JOB_DEF = JobDef(
    name=JOB,
    description=__doc__.strip().splitlines()[0],
    inputs=(EVENTS, SESSIONS.name),
    outputs=(
        out(USER_FEATURES, "replace_partitions"),
        out(PATH_VOCABULARY.name, "replace"),
        out(CATALOG.name, "replace"),
        out(DRIFT.name, "replace_partitions"),
    ),
    body=run,
    arguments=_arguments,
)

cli = JOB_DEF.cli  # the entry point: jobs/<name>.py, spark-submit, Databricks
