"""The job layer stays small: jobs are declarations, orchestrators plan -> compute ->
write in functions of at most ~60 lines."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "lib" / "behavior_lake"
JOB_LAYER = [
    *sorted((PKG / "jobs").glob("*.py")),
    PKG / "bronze" / "ingest.py",
    PKG / "silver" / "build.py",
    PKG / "gold" / "build.py",
    *sorted((PKG / "ml").glob("segment_*.py")),
    *sorted((PKG / "ml").glob("churn_*.py")),
    *sorted((PKG / "governance").glob("*.py")),
    PKG / "pipeline.py",
    PKG / "runtime.py",
]
MAX_LINES = 60


def long_functions(source: str, limit: int = MAX_LINES) -> list[tuple[str, int]]:
    return [
        (n.name, n.end_lineno - n.lineno + 1)
        for n in ast.walk(ast.parse(source))
        if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
        and n.end_lineno - n.lineno + 1 > limit
    ]


def test_no_function_in_the_job_layer_over_60_lines() -> None:
    assert all(p.exists() for p in JOB_LAYER) and len(JOB_LAYER) > 20
    found = {
        f"{p.relative_to(PKG)}:{name}": n
        for p in JOB_LAYER
        for name, n in long_functions(p.read_text())
    }
    assert found == {}


def test_the_length_check_finds_a_long_function() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(70))
    assert long_functions(f"def f():\n{body}\n") == [("f", 71)]


def test_every_job_module_declares_its_job() -> None:
    from behavior_lake.jobs import TASK_JOBS, registry

    jobs = registry()
    assert tuple(jobs) == TASK_JOBS
    for name, job in jobs.items():
        assert (PKG / "jobs" / f"{name}.py").exists()
        assert (PKG.parents[1] / "jobs" / f"{name}.py").exists()  # the entry point
        assert job.description and job.body
