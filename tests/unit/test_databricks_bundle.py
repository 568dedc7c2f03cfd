"""The generated Databricks bundle is current, holds valid Jobs API settings, and passes
the rules the Databricks CLI enforces that it could break (checked without a workspace)."""

from __future__ import annotations

import copy

import pytest
import yaml
from databricks.sdk.service.jobs import JobSettings

from behavior_lake.config import load_settings
from behavior_lake.databricks_bundle import (
    AS_OF_ARGS,
    JOB_KEY,
    REVIEW_KEY,
    bundle_files,
    bundle_problems,
    entry_point,
    quartz,
)
from behavior_lake.entry import SCRIPT_PREFIX
from tests.conftest import CONF, REPO

BUNDLE = REPO / "infra" / "databricks"


def committed() -> tuple[dict, dict]:
    config = yaml.safe_load((BUNDLE / "databricks.yml").read_text())
    jobs = yaml.safe_load((BUNDLE / "resources" / f"{JOB_KEY}.job.yml").read_text())
    return config, jobs["resources"]["jobs"]


def test_committed_bundle_is_current() -> None:
    files = bundle_files(load_settings("local", conf_dir=CONF).pipeline)
    for rel, text in files.items():
        assert (BUNDLE / rel).read_text() == text, f"{rel} is stale: run make databricks-bundle"


def test_job_settings_are_valid_and_follow_the_dag() -> None:
    s = load_settings("local", conf_dir=CONF)
    _, jobs = committed()
    for job in jobs.values():
        assert JobSettings.from_dict(job).as_dict() == job  # nothing unknown or misspelled
    parsed = JobSettings.from_dict(jobs[JOB_KEY])
    tasks = {t.task_key: t for t in parsed.tasks}
    assert set(tasks) == set(s.pipeline.tasks)
    for name, t in s.pipeline.tasks.items():
        got = tasks[name]
        assert sorted(d.task_key for d in got.depends_on or []) == sorted(t.depends_on)
        assert got.python_wheel_task.entry_point == entry_point(t.job)
        assert got.python_wheel_task.entry_point.startswith(SCRIPT_PREFIX)
        assert got.python_wheel_task.parameters[:2] == ["--env", "databricks"]
        assert got.max_retries == t.retries
        assert got.health.rules[0].value == int(t.sla.max_duration_minutes * 60)
        assert (got.run_if is not None) == (t.run_if == "all_done")
    assert parsed.schedule.quartz_cron_expression == quartz(s.pipeline.schedule)
    assert tasks["erase_subjects"].run_if.value == "ALL_DONE"
    # a backfill is one run with as_of set: the dated jobs take it, empty = the latest
    assert {p.name: p.default for p in parsed.parameters}["as_of"] == ""
    for name, flag in AS_OF_ARGS.items():
        params = tasks[name].python_wheel_task.parameters
        assert params[params.index(flag) + 1] == "{{job.parameters.as_of}}"
    assert "{{job.parameters.as_of}}" not in tasks["bronze_ingest"].python_wheel_task.parameters
    assert {t.task_key for t in JobSettings.from_dict(jobs[REVIEW_KEY]).tasks} >= {
        "kpi_exploration",
        "churn_review",
    }


def test_runtime_is_spark_4_on_unity_catalog_ready_clusters() -> None:
    config, jobs = committed()
    assert config["variables"]["spark_version"]["default"].startswith("17.")
    cluster = jobs[JOB_KEY]["job_clusters"][0]["new_cluster"]
    assert cluster["data_security_mode"] == "SINGLE_USER" and "autoscale" in cluster
    assert "dbfs:" not in (BUNDLE / "databricks.yml").read_text()


def test_the_bundle_passes_the_cli_rules() -> None:
    config, jobs = committed()
    assert bundle_problems(config, jobs, BUNDLE) == []
    prod = config["targets"]["prod"]
    assert prod["mode"] == "production" and prod["workspace"]["root_path"] and prod["run_as"]


def test_the_rules_catch_what_the_cli_rejects() -> None:
    config, jobs = committed()
    bad_config, bad_jobs = copy.deepcopy(config), copy.deepcopy(jobs)
    del bad_config["sync"]  # the wheel and notebooks are then outside the sync root
    del bad_config["targets"]["prod"]["run_as"]
    tasks = bad_jobs[JOB_KEY]["tasks"]
    tasks.append(copy.deepcopy(tasks[0]))
    tasks[1]["depends_on"] = [{"task_key": "nope"}]
    tasks[2]["python_wheel_task"]["entry_point"] = "behavior-lake-nothing"
    problems = "\n".join(bundle_problems(bad_config, bad_jobs, BUNDLE))
    assert "artifacts.behavior_lake_wheel.path ../.. is not contained in the sync root" in problems
    assert "notebook_path ../../notebooks/kpi_exploration.py is not contained" in problems
    assert "targets.prod: production mode needs run_as" in problems
    assert f"task_key {tasks[0]['task_key']} is used twice" in problems
    assert "depends_on: no task nope" in problems
    assert "the wheel has no entry point behavior-lake-nothing" in problems


@pytest.mark.parametrize(
    ("cron", "want"),
    [
        ("0 3 * * *", "0 0 3 * * ?"),
        ("30 6 * * 1-5", "0 30 6 ? * 2-6"),
        ("15 2 1 * *", "0 15 2 1 * ?"),
    ],
)
def test_cron_to_quartz(cron: str, want: str) -> None:
    assert quartz(cron) == want


def test_the_dashboard_is_in_the_bundle_over_the_databricks_schemas() -> None:
    import json

    from databricks.sdk.service.dashboards import Dashboard

    from behavior_lake.databricks_bundle import DASHBOARD_FILE, DASHBOARD_KEY, SCHEMA_PREFIX
    from behavior_lake.insights.lakeview import dashboard_problems

    lake_yml = yaml.safe_load((CONF / "databricks" / "lake.yml").read_text())
    assert lake_yml["lake"]["schema_prefix"] == SCHEMA_PREFIX
    res = yaml.safe_load((BUNDLE / "resources" / f"{DASHBOARD_KEY}.dashboard.yml").read_text())
    spec = res["resources"]["dashboards"][DASHBOARD_KEY]
    path = (BUNDLE / "resources" / spec["file_path"]).resolve()
    assert path == (BUNDLE / DASHBOARD_FILE).resolve() and path.is_file()
    doc = json.loads(path.read_text())
    assert dashboard_problems(doc) == []
    # the fields the Lakeview API takes for a dashboard (the bundle maps onto them)
    api = Dashboard.from_dict({**{k: v for k, v in spec.items() if k != "file_path"},
                               "serialized_dashboard": json.dumps(doc)})  # fmt: skip
    assert api.display_name == "behavior-lake insights" and api.warehouse_id
    variables = yaml.safe_load((BUNDLE / "databricks.yml").read_text())["variables"]
    assert spec["warehouse_id"] == "${var.warehouse_id}" and "warehouse_id" in variables
    assert spec["dataset_catalog"] == "${var.catalog}" and "catalog" in variables


def test_the_serverless_job_runs_the_same_tasks_in_an_environment() -> None:
    from behavior_lake.databricks_bundle import SERVERLESS_KEY

    doc = yaml.safe_load((BUNDLE / "resources" / f"{SERVERLESS_KEY}.job.yml").read_text())
    job = doc["targets"]["serverless"]["resources"]["jobs"][SERVERLESS_KEY]
    assert JobSettings.from_dict(job).as_dict() == job  # nothing unknown or misspelled
    _, jobs = committed()
    cluster = jobs[JOB_KEY]
    assert [t["task_key"] for t in job["tasks"]] == [t["task_key"] for t in cluster["tasks"]]
    assert "job_clusters" not in job
    assert all(t["environment_key"] == "default" and "job_cluster_key" not in t
               for t in job["tasks"])  # fmt: skip
    (env,) = job["environments"]
    assert env["spec"]["dependencies"] == ["../../dist/*.whl"]
    assert job["parameters"] == cluster["parameters"]
    config, _ = committed()
    assert "serverless" in config["targets"]
    assert bundle_problems(config, {SERVERLESS_KEY: job}, BUNDLE) == []
    # positive control: a task naming an environment the job does not define
    broken = {**job, "tasks": [{**job["tasks"][0], "environment_key": "gpu"}]}
    assert "no environment gpu" in "\n".join(bundle_problems(config, {"x": broken}, BUNDLE))
