"""Analyse A/B tests and campaign holdouts: exposures, lift, SRM alerts.

    python jobs/gold_experiments.py [--as-of YYYY-MM-DD] [--env local] [--conf key=value ...]

Exposures come from "Experiment Viewed" events in silver (first exposure per person and
experiment; persons seen in several variations excluded and counted). Every configured
metric (experiments.metrics) is compared with the control for every analysis date from
the first exposure to --as-of (default: the last day with events): lift with intervals,
p-value, Benjamini-Hochberg across metrics, CUPED with a pre-exposure covariate from
gold.user_features, an always-valid sequential test, and a sample-ratio check (failures
also in ops.experiment_alerts). Campaigns with a holdout (activation.decisions) get the
lift of their target metric, treated vs held out. Method: docs/experiments.md.
"""

from __future__ import annotations

import argparse

from behavior_lake.contracts.activation import DECISIONS
from behavior_lake.contracts.experiments import ALERTS, CAMPAIGN_LIFT, EXPOSURES, RESULTS
from behavior_lake.contracts.gold import USER_FEATURES
from behavior_lake.contracts.silver import EVENTS, SESSIONS
from behavior_lake.experiments.build import build_experiments
from behavior_lake.runtime import JobContext, JobDef, iso_date, out
from behavior_lake.spark import cache_scope

JOB = "gold_experiments"


def run(ctx: JobContext, args) -> None:
    with cache_scope(ctx.settings) as caches:
        st = build_experiments(ctx.lake, ctx.settings, caches, args.as_of)
    ctx.record.rows_out = sum(st.rows.values())
    ctx.count(experiments=st.experiments, excluded_persons=st.excluded_persons,
              srm_flagged=len(st.srm_flagged), campaigns=st.campaigns,
              **{name.split(".")[1] + "_rows": n for name, n in st.rows.items()})  # fmt: skip
    print(
        f"{JOB}: {st.experiments} experiment(s), {st.rows.get(RESULTS.name, 0)} result row(s), "
        f"sample-ratio mismatch: {', '.join(st.srm_flagged) or 'none'}; "
        f"{st.campaigns} campaign(s) with lift"
    )


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--as-of",
        type=iso_date,
        default=None,
        help="last analysis date (default: the last day with events)",
    )


JOB_DEF = JobDef(
    name=JOB,
    description=__doc__.strip().splitlines()[0],
    inputs=(EVENTS, SESSIONS.name, USER_FEATURES),
    feedback=(DECISIONS.name,),
    outputs=(
        out(EXPOSURES.name, "replace"),
        out(RESULTS.name, "replace"),
        out(ALERTS.name, "replace"),
        out(CAMPAIGN_LIFT.name, "replace"),
    ),
    body=run,
    arguments=_arguments,
)

cli = JOB_DEF.cli  # the entry point: jobs/<name>.py, spark-submit, Databricks
