"""The jobs: one module per job, each declaring a `JOB_DEF` (inputs, outputs and their
write modes, body, arguments). `registry()` maps job names to them; the pipeline runs
tasks through it and derives its DAG from their inputs and outputs. `jobs/<name>.py` at
the top of the repository are the spark-submit and Databricks entry points."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from behavior_lake.runtime import JobDef

TASK_JOBS = (
    "generate_events",
    "bronze_ingest",
    "silver_events",
    "gold_features",
    "gold_kpis",
    "gold_experiments",
    "train_segments",
    "assign_segments",
    "train_churn",
    "score_churn",
    "erase_subjects",
    "enforce_retention",
    "export_report",
    "export_subject",
    "build_report",
    "activation_stream",
    "deliver_actions",
    "sync_profiles",
)


def registry() -> Mapping[str, JobDef]:
    """Every job that can run as a pipeline task, by name."""
    from behavior_lake.jobs import (
        activation_stream,
        assign_segments,
        bronze_ingest,
        build_report,
        deliver_actions,
        enforce_retention,
        erase_subjects,
        export_report,
        export_subject,
        generate_events,
        gold_experiments,
        gold_features,
        gold_kpis,
        score_churn,
        silver_events,
        sync_profiles,
        train_churn,
        train_segments,
    )

    modules = (
        generate_events,
        bronze_ingest,
        silver_events,
        gold_features,
        gold_kpis,
        gold_experiments,
        train_segments,
        assign_segments,
        train_churn,
        score_churn,
        erase_subjects,
        enforce_retention,
        export_report,
        export_subject,
        build_report,
        activation_stream,
        deliver_actions,
        sync_profiles,
    )
    jobs = {m.JOB_DEF.name: m.JOB_DEF for m in modules}
    assert tuple(jobs) == TASK_JOBS
    return MappingProxyType(jobs)
