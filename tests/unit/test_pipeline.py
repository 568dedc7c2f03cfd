"""The pipeline DAG: validation, selection, retries, failure isolation (no Spark)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from behavior_lake.config import ConfigError, PipelineSettings, TaskSettings, load_settings
from behavior_lake.pipeline import check_dag, run_tasks, select, summary
from tests.conftest import CONF


def T(job: str, *deps: str, retries: int = 0) -> TaskSettings:
    return TaskSettings(job=job, depends_on=list(deps), retries=retries, retry_delay_seconds=0)


DAG = {
    "bronze": T("bronze_ingest"),
    "silver": T("silver_events", "bronze"),
    "features": T("gold_features", "silver"),
    "kpis": T("gold_kpis", "silver"),
    "churn": T("train_churn", "features"),
    "score": T("score_churn", "churn"),
}


def test_shipped_pipeline_is_a_valid_dag() -> None:
    s = load_settings("local", conf_dir=CONF)
    order = check_dag(s.pipeline.tasks)
    assert (
        order.index("bronze_ingest") < order.index("silver_events") < order.index("gold_features")
    )
    assert order.index("train_churn") < order.index("score_churn")
    assert "generate_events" not in {t.job for t in s.pipeline.tasks.values()}


def test_dag_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"pipeline.tasks.b.depends_on: unknown task 'zz'"):
        check_dag({"a": T("bronze_ingest"), "b": T("silver_events", "zz")})
    with pytest.raises(ConfigError, match="dependency cycle"):
        check_dag({"a": T("bronze_ingest", "b"), "b": T("silver_events", "a")})
    with pytest.raises(ConfigError, match=r"pipeline.tasks.a.job: unknown job 'nope'"):
        check_dag({"a": T("nope")})


def test_select_from_and_only() -> None:
    assert select(DAG) == ["bronze", "silver", "features", "kpis", "churn", "score"]
    assert select(DAG, start="features") == ["features", "churn", "score"]
    assert select(DAG, only=["kpis"]) == ["kpis"]
    with pytest.raises(ConfigError, match="unknown task 'x'"):
        select(DAG, only=["x"])


def settings_with(tasks: dict[str, TaskSettings]):
    s = load_settings("local", conf_dir=CONF)
    return replace(s, pipeline=PipelineSettings(tasks=tasks))


def test_failure_skips_dependents_not_unrelated_tasks_and_retries() -> None:
    calls: list[str] = []
    flaky = {"silver_events": 1}  # fails once, then succeeds

    def cli_for(job: str):
        def cli(argv: list[str]) -> int:
            calls.append(job)
            if job == "train_churn":
                return 1
            if flaky.get(job):
                flaky[job] -= 1
                return 1
            return 0

        return cli

    tasks = dict(
        DAG,
        silver=T("silver_events", "bronze", retries=1),
        churn=T("train_churn", "features", retries=2),
    )
    results = {
        r.task: r
        for r in run_tasks(settings_with(tasks), select(tasks), [], cli_for, lambda s: None)
    }
    assert results["silver"].status == "success" and results["silver"].attempts == 2
    assert results["churn"].status == "failed" and results["churn"].attempts == 3
    assert results["score"].status == "skipped" and "churn" in results["score"].detail
    assert results["kpis"].status == "success"  # unrelated to the failure
    assert "score_churn" not in calls
    assert "skipped" in summary(list(results.values()))


def _stub_runner(monkeypatch: pytest.MonkeyPatch, generate_rc: int) -> list[tuple[str, list]]:
    """jobs.run_pipeline with Spark, the lake and the tasks stubbed; returns the calls."""
    import jobs.run_pipeline as rp

    from behavior_lake.pipeline import TaskResult

    calls: list[tuple[str, list]] = []

    def job_cli(job: str):
        return lambda argv: calls.append((job, list(argv))) or generate_rc

    def run_tasks(settings, names, base):
        calls.append(("tasks", list(names)))
        return [TaskResult(n, "success") for n in names]

    monkeypatch.setattr(rp, "build_session", lambda settings: object())
    monkeypatch.setattr(rp, "job_cli", job_cli)
    monkeypatch.setattr(rp, "run_tasks", run_tasks)
    monkeypatch.setattr(rp, "open_lake", lambda spark, settings: None)
    monkeypatch.setattr(rp, "sla_breaches", lambda *a: [])
    monkeypatch.setattr(rp, "record_breaches", lambda *a: None)
    return calls


def test_generate_runs_first_in_the_same_session(monkeypatch: pytest.MonkeyPatch) -> None:
    import jobs.run_pipeline as rp

    calls = _stub_runner(monkeypatch, generate_rc=0)
    conf = "--conf=pipeline.schedule=0 4 * * *"
    assert rp.cli(["--generate", "--only", "bronze_ingest", conf]) == 0
    assert calls[0][0] == "generate_events"
    assert calls[0][1][:2] == ["--env", "local"] and "pipeline.schedule=0 4 * * *" in calls[0][1]
    assert calls[1] == ("tasks", ["bronze_ingest"])


def test_failed_generation_runs_no_task(monkeypatch: pytest.MonkeyPatch) -> None:
    import jobs.run_pipeline as rp

    calls = _stub_runner(monkeypatch, generate_rc=1)
    assert rp.cli(["--generate"]) == 1
    assert [c[0] for c in calls] == ["generate_events"]
    calls.clear()
    assert rp.cli([]) == 0  # without --generate nothing is generated
    assert [c[0] for c in calls] == ["tasks"]
