"""The pipeline DAG: validation, selection, retries, failure isolation (no Spark)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from behavior_lake.config import ConfigError, PipelineSettings, TaskSettings, load_settings
from behavior_lake.jobs import TASK_JOBS, registry
from behavior_lake.pipeline import check_dag, check_lineage, run_tasks, select, summary
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
    order = check_dag(s.pipeline.tasks, TASK_JOBS)
    assert (
        order.index("bronze_ingest") < order.index("silver_events") < order.index("gold_features")
    )
    assert order.index("train_churn") < order.index("score_churn")
    assert "generate_events" not in {t.job for t in s.pipeline.tasks.values()}


def test_shipped_pipeline_follows_the_jobs_lineage() -> None:
    s = load_settings("local", conf_dir=CONF)
    jobs = registry()
    assert check_lineage(s.pipeline.tasks, jobs, s) == check_dag(s.pipeline.tasks, TASK_JOBS)
    # without gold_features upstream, train_churn reads gold.user_features too early
    tasks = dict(s.pipeline.tasks)
    tasks["train_churn"] = replace(tasks["train_churn"], depends_on=["silver_events"])
    with pytest.raises(ConfigError) as err:
        check_lineage(tasks, jobs, s)
    assert "pipeline.tasks.train_churn.depends_on: its job train_churn reads " in str(err.value)
    assert "gold.user_features, which task gold_features writes" in str(err.value)
    # erasure must follow every task that writes rows about persons
    tasks = dict(s.pipeline.tasks)
    tasks["erase_subjects"] = replace(tasks["erase_subjects"], depends_on=["gold_kpis"])
    with pytest.raises(ConfigError, match=r"erase_subjects deletes from gold\.churn_scores"):
        check_lineage(tasks, jobs, s)
    # an SLA output the job does not write
    tasks = dict(s.pipeline.tasks)
    tasks["gold_kpis"] = replace(tasks["gold_kpis"], outputs=["gold.user_features"])
    with pytest.raises(ConfigError, match=r"gold_kpis\.outputs: job gold_kpis does not write"):
        check_lineage(tasks, jobs, s)


def test_dag_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"pipeline.tasks.b.depends_on: unknown task 'zz'"):
        check_dag({"a": T("bronze_ingest"), "b": T("silver_events", "zz")}, TASK_JOBS)
    with pytest.raises(ConfigError, match="dependency cycle"):
        check_dag({"a": T("bronze_ingest", "b"), "b": T("silver_events", "a")}, TASK_JOBS)
    with pytest.raises(ConfigError, match=r"pipeline.tasks.a.job: unknown job 'nope'"):
        check_dag({"a": T("nope")}, TASK_JOBS)


def test_select_from_and_only() -> None:
    assert select(DAG, TASK_JOBS) == ["bronze", "silver", "features", "kpis", "churn", "score"]
    assert select(DAG, TASK_JOBS, start="features") == ["features", "churn", "score"]
    assert select(DAG, TASK_JOBS, only=["kpis"]) == ["kpis"]
    with pytest.raises(ConfigError, match="unknown task 'x'"):
        select(DAG, TASK_JOBS, only=["x"])


def settings_with(tasks: dict[str, TaskSettings]):
    s = load_settings("local", conf_dir=CONF)
    return replace(s, pipeline=PipelineSettings(tasks=tasks))


def test_failure_skips_dependents_not_unrelated_tasks_and_retries() -> None:
    calls: list[str] = []
    flaky = {"silver_events": 1}  # fails once, then succeeds

    def runner(job: str, argv: list[str]) -> tuple[int, None]:
        calls.append(job)
        if job == "train_churn":
            return 1, None
        if flaky.get(job):
            flaky[job] -= 1
            return 1, None
        return 0, None

    tasks = dict(
        DAG,
        silver=T("silver_events", "bronze", retries=1),
        churn=T("train_churn", "features", retries=2),
    )
    results = {
        r.task: r
        for r in run_tasks(
            settings_with(tasks), select(tasks, TASK_JOBS), [], runner, lambda s: None
        )
    }
    assert results["silver"].status == "success" and results["silver"].attempts == 2
    assert results["churn"].status == "failed" and results["churn"].attempts == 3
    assert results["score"].status == "skipped" and "churn" in results["score"].detail
    assert results["kpis"].status == "success"  # unrelated to the failure
    assert "score_churn" not in calls
    assert "skipped" in summary(list(results.values()))


def test_a_failed_model_never_stops_erasure_or_retention() -> None:
    s = load_settings("local", conf_dir=CONF)
    calls: list[str] = []

    def runner(job: str, argv: list[str]) -> tuple[int, None]:
        calls.append(job)
        return (1 if job in ("train_churn", "train_segments") else 0), None

    names = select(s.pipeline.tasks, TASK_JOBS)
    results = {r.task: r for r in run_tasks(s, names, [], runner, lambda _s: None)}
    assert results["train_churn"].status == "failed"
    assert results["score_churn"].status == "skipped"  # needs the model
    assert results["assign_segments"].status == "skipped"
    assert results["erase_subjects"].status == "success"  # run_if: all_done
    assert results["enforce_retention"].status == "success"
    assert calls.index("erase_subjects") > calls.index("train_churn")  # still after writers
    # positive control: without run_if all_done the failure would have skipped erasure
    tasks = {
        n: replace(t, run_if="all_success") if n == "erase_subjects" else t
        for n, t in s.pipeline.tasks.items()
    }
    again = {r.task: r for r in run_tasks(settings_with(tasks), names, [], runner, lambda _s: None)}
    assert again["erase_subjects"].status == "skipped"


def _stub_runner(monkeypatch: pytest.MonkeyPatch, generate_rc: int) -> list[tuple[str, list]]:
    """jobs.run_pipeline with Spark, the lake and the tasks stubbed; returns the calls."""
    import behavior_lake.jobs.run_pipeline as rp
    from behavior_lake.pipeline import TaskResult

    calls: list[tuple[str, list]] = []

    class FakeJob:
        def __init__(self, name: str) -> None:
            self.name = name

        def run(self, argv):
            calls.append((self.name, list(argv)))
            return generate_rc, None

    def run_tasks(settings, names, base, runner):
        calls.append(("tasks", list(names)))
        return [TaskResult(n, "success") for n in names]

    monkeypatch.setattr(rp, "build_session", lambda settings: object())
    monkeypatch.setattr(rp, "registry", lambda: {n: FakeJob(n) for n in TASK_JOBS})
    monkeypatch.setattr(rp, "check_lineage", lambda *a: None)
    monkeypatch.setattr(rp, "run_tasks", run_tasks)
    monkeypatch.setattr(rp, "open_lake", lambda spark, settings: None)
    monkeypatch.setattr(rp, "sla_breaches", lambda *a: [])
    monkeypatch.setattr(rp, "record_breaches", lambda *a: None)
    return calls


def test_generate_runs_first_in_the_same_session(monkeypatch: pytest.MonkeyPatch) -> None:
    import behavior_lake.jobs.run_pipeline as rp

    calls = _stub_runner(monkeypatch, generate_rc=0)
    conf = "--conf=pipeline.schedule=0 4 * * *"
    assert rp.cli(["--generate", "--only", "bronze_ingest", conf]) == 0
    assert calls[0][0] == "generate_events"
    assert calls[0][1][:2] == ["--env", "local"] and "pipeline.schedule=0 4 * * *" in calls[0][1]
    assert calls[1] == ("tasks", ["bronze_ingest"])


def test_failed_generation_runs_no_task(monkeypatch: pytest.MonkeyPatch) -> None:
    import behavior_lake.jobs.run_pipeline as rp

    calls = _stub_runner(monkeypatch, generate_rc=1)
    assert rp.cli(["--generate"]) == 1
    assert [c[0] for c in calls] == ["generate_events"]
    calls.clear()
    assert rp.cli([]) == 0  # without --generate nothing is generated
    assert [c[0] for c in calls] == ["tasks"]


class RecordingLake:
    """Stands in for the engine behind DeclaredLake: records what reaches it."""

    engine = "test"

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def append(self, table, df, **kw):
        self.calls.append(("append", table))

    def overwrite(self, table, df, *, where=None, **kw):
        self.calls.append(("overwrite", table))

    def delete(self, table, where):
        self.calls.append(("delete", table))

    def read(self, table):
        return f"read {table}"


def test_declared_lake_refuses_writes_its_job_does_not_declare() -> None:
    from behavior_lake.lake import Where
    from behavior_lake.runtime import DeclaredLake, UndeclaredWriteError, out

    inner = RecordingLake()
    lake = DeclaredLake(
        inner, "demo", [out("gold.daily_kpis", "replace"), out("ops.x", "append", "delete")]
    )
    lake.overwrite("gold.daily_kpis", None)  # declared: passes through
    lake.append("ops.x", None)
    lake.delete("ops.x", Where.eq("a", 1))
    lake.append("ops.job_runs", None)  # the runner's bookkeeping is always allowed
    assert lake.read("silver.events") == "read silver.events"  # reads pass through
    assert lake.engine == "test"
    with pytest.raises(UndeclaredWriteError, match=r"wrote gold\.daily_kpis with mode"):
        lake.overwrite("gold.daily_kpis", None, where=Where.eq("kpi_date", 1))
    with pytest.raises(UndeclaredWriteError, match=r"wrote silver\.events with mode append"):
        lake.append("silver.events", None)
    assert inner.calls == [
        ("overwrite", "gold.daily_kpis"),
        ("append", "ops.x"),
        ("delete", "ops.x"),
        ("append", "ops.job_runs"),
    ]


def test_every_registered_job_declares_catalog_tables_only() -> None:
    from behavior_lake.catalog import table_names
    from behavior_lake.runtime import ANY_TABLE, LANDING, MODEL_CHURN, MODEL_SEGMENTS

    known = table_names() | {LANDING, MODEL_CHURN, MODEL_SEGMENTS, ANY_TABLE}
    s = load_settings("local", conf_dir=CONF)
    for name, job in registry().items():
        named = set(job.inputs) | set(job.feedback)
        named |= {o.table for o in job.declared_outputs(s)}
        assert named <= known, (name, named - known)


def test_an_empty_date_parameter_means_the_latest_snapshot() -> None:
    from datetime import date

    jobs = registry()
    assert jobs["score_churn"].parser().parse_args(["--as-of", ""]).as_of is None
    assert jobs["gold_features"].parser().parse_args(["--to-date", " "]).to_date is None
    given = jobs["assign_segments"].parser().parse_args(["--as-of", "2026-01-05"])
    assert given.as_of == date(2026, 1, 5)
    with pytest.raises(SystemExit):  # a malformed date still fails
        jobs["score_churn"].parser().parse_args(["--as-of", "yesterday"])
