"""The Databricks-source notebooks run locally on the demo lake (models trained if needed)."""

from __future__ import annotations

import runpy

import matplotlib.pyplot as plt
import pytest

from tests.conftest import REPO
from tests.integration.conftest import Demo

pytestmark = pytest.mark.slow
NOTEBOOKS = ["kpi_exploration", "segment_review", "churn_review", "bronze_overview"]


@pytest.fixture(scope="module")
def ready(modeled: Demo) -> Demo:
    return modeled


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs(ready: Demo, name: str, monkeypatch, capsys) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("BEHAVIOR_LAKE_OVERRIDES", ";".join(ready.overrides()))
    path = REPO / "notebooks" / f"{name}.py"
    source = path.read_text()
    assert source.startswith("# Databricks notebook source")
    # the installed package, never the working directory; parameters from widgets
    assert "sys.path" not in source and "review.parameters(globals())" in source
    # an earlier date bounds the KPI view; the model notebooks read the latest snapshot
    # (the only one every run of this module has scored)
    as_of = ready.as_of_dates[-2] if name == "kpi_exploration" else ready.as_of_dates[-1]
    monkeypatch.setenv("BEHAVIOR_LAKE_AS_OF", str(as_of))
    before = len(plt.get_fignums())
    ns = runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    assert out.strip(), f"{name} printed nothing"
    assert ns["as_of"] == as_of
    if name == "kpi_exploration":
        assert len(ns["kpis"]) > 20 and "dau" in ns["kpis"].columns
        assert ns["kpis"]["kpi_date"].max() <= as_of  # the widget's date bounds the view
    if name == "segment_review":
        assert ns["sizes"]["count"].sum() > 0 and ns["profile"]
    if name == "churn_review":
        assert "champion" in set(ns["models"]["alias"]) and len(ns["table"]) > 0
    if name != "bronze_overview":
        assert len(plt.get_fignums()) > before  # a figure was drawn
    plt.close("all")


class Widgets:
    """The part of Databricks' dbutils.widgets a notebook uses (text, get)."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values, self.created = values, []

    def text(self, name: str, default: str, label: str) -> None:
        self.created.append(name)
        self.values.setdefault(name, default)

    def get(self, name: str) -> str:
        return self.values[name]


def test_parameters_come_from_widgets_when_there_are_widgets(monkeypatch) -> None:
    from datetime import date

    from behavior_lake import review

    monkeypatch.setenv("BEHAVIOR_LAKE_ENV", "local")
    monkeypatch.delenv("BEHAVIOR_LAKE_AS_OF", raising=False)
    dbutils = type("DbUtils", (), {})()
    dbutils.widgets = Widgets({"as_of": "2026-02-01"})
    assert review.parameters({"dbutils": dbutils}) == ("databricks", date(2026, 2, 1))
    assert dbutils.widgets.created == ["env", "as_of"]
    assert review.parameters({}) == ("local", None)  # positive control: no widgets
    dbutils.widgets = Widgets({"as_of": "Feb 1"})
    with pytest.raises(ValueError, match="as_of: expected a date"):
        review.parameters({"dbutils": dbutils})
    shown = []
    show = review.shower({"dbutils": dbutils, "display": shown.append})
    show("table")
    assert shown == ["table"]
