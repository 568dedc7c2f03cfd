"""The generated Databricks bundle is current and holds valid Jobs API settings."""

from __future__ import annotations

import pytest
import yaml
from databricks.sdk.service.jobs import JobSettings

from behavior_lake.config import load_settings
from behavior_lake.databricks_bundle import JOB_KEY, bundle_files, quartz
from tests.conftest import CONF, REPO

BUNDLE = REPO / "infra" / "databricks"


def test_committed_bundle_is_current() -> None:
    files = bundle_files(load_settings("local", conf_dir=CONF).pipeline)
    for rel, text in files.items():
        assert (BUNDLE / rel).read_text() == text, f"{rel} is stale: run make databricks-bundle"


def test_job_settings_are_valid_and_follow_the_dag() -> None:
    s = load_settings("local", conf_dir=CONF)
    doc = yaml.safe_load((BUNDLE / "resources" / f"{JOB_KEY}.job.yml").read_text())
    job = doc["resources"]["jobs"][JOB_KEY]
    parsed = JobSettings.from_dict(job)
    assert parsed.as_dict() == job  # nothing unknown or misspelled was dropped
    tasks = {t.task_key: t for t in parsed.tasks}
    assert set(tasks) == set(s.pipeline.tasks)
    for name, t in s.pipeline.tasks.items():
        got = tasks[name]
        assert sorted(d.task_key for d in got.depends_on or []) == sorted(t.depends_on)
        assert got.spark_python_task.python_file.endswith(f"jobs/{t.job}.py")
        assert got.spark_python_task.parameters[:2] == ["--env", "databricks"]
        assert got.max_retries == t.retries
        assert got.timeout_seconds == int(t.sla.max_duration_minutes * 60)
    assert parsed.schedule.quartz_cron_expression == quartz(s.pipeline.schedule)
    main = yaml.safe_load((BUNDLE / "databricks.yml").read_text())
    assert set(main["targets"]) == {"dev", "prod"}


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
