"""What the review notebooks show: small pandas frames and figures from the lake and MLflow.

Notebooks only call these functions (no logic of their own), so the same views run on
Databricks, locally, and in the tests.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from pyspark.sql import functions as F

from behavior_lake.catalog import open_lake
from behavior_lake.config import Settings, load_settings
from behavior_lake.contracts.gold import DAILY_KPIS, FUNNELS, RETENTION_COHORTS
from behavior_lake.contracts.ml import (
    CHURN_SCORES,
    MODEL_MONITORING,
    SEGMENT_DRIFT,
    SHADOW_COMPARISON,
    USER_SEGMENTS,
)
from behavior_lake.lake import Lake
from behavior_lake.ml import plots  # noqa: F401  (selects the headless backend)
from behavior_lake.spark import build_session


@dataclass
class Context:
    settings: Settings
    spark: Any
    lake: Lake


def parameters(ns: dict[str, Any]) -> tuple[str, date | None]:
    """The notebook's environment and as-of date: Databricks widgets `env` and `as_of`
    (created on first run; empty as_of = the latest data), else BEHAVIOR_LAKE_ENV and
    BEHAVIOR_LAKE_AS_OF (local runs)."""
    dbutils = ns.get("dbutils")
    if dbutils is not None:
        dbutils.widgets.text("env", "databricks", "Environment (conf/<env>)")
        dbutils.widgets.text("as_of", "", "As-of date (YYYY-MM-DD, empty = latest)")
        env, raw = dbutils.widgets.get("env"), dbutils.widgets.get("as_of")
    else:
        env = os.environ.get("BEHAVIOR_LAKE_ENV", "local")
        raw = os.environ.get("BEHAVIOR_LAKE_AS_OF", "")
    try:
        as_of = date.fromisoformat(raw.strip()) if raw and raw.strip() else None
    except ValueError as exc:
        raise ValueError(f"as_of: expected a date YYYY-MM-DD or nothing, got {raw!r}") from exc
    return env, as_of


def shower(ns: dict[str, Any]) -> Callable[[Any], None]:
    """`show(obj)`: Databricks' display() in a Databricks notebook, IPython's inline
    display in Jupyter, else a text table (figures stay open for the caller)."""
    if callable(ns.get("display")) and ns.get("dbutils") is not None:
        return ns["display"]
    try:
        from IPython import get_ipython

        if get_ipython() is not None and getattr(get_ipython(), "kernel", None) is not None:
            from IPython.display import display

            return display
    except ImportError:
        pass

    def show(obj: Any) -> None:
        if hasattr(obj, "to_string"):
            print(obj.to_string(index=getattr(obj, "index", None) is not None
                                and obj.index.name is not None))  # fmt: skip
        elif not hasattr(obj, "savefig"):
            print(obj)

    return show


def context(env: str | None = None) -> Context:
    """Settings of `env` (default BEHAVIOR_LAKE_ENV, else local) with
    BEHAVIOR_LAKE_OVERRIDES (`key=value;key=value`), the session (the notebook's own
    `spark` on Databricks) and the lake."""
    env = env or os.environ.get("BEHAVIOR_LAKE_ENV", "local")
    extra = [x for x in os.environ.get("BEHAVIOR_LAKE_OVERRIDES", "").split(";") if x.strip()]
    settings = load_settings(env, extra)
    spark = build_session(settings)
    return Context(settings, spark, open_lake(spark, settings))


def _day(df, col: str, as_of: date | None):
    """The latest `col` value at or before as_of (None: the latest)."""
    if as_of is not None:
        df = df.filter(F.col(col) <= F.lit(as_of))
    return df.agg(F.max(col)).first()[0]


# ----------------------------------------------------------------------------- KPIs


def kpis(lake: Lake, platform: str = "all", as_of: date | None = None):
    """gold.daily_kpis for one platform as pandas (one row per day: small), up to as_of."""
    df = lake.read(DAILY_KPIS.name).filter(F.col("platform") == platform)
    if as_of is not None:
        df = df.filter(F.col("kpi_date") <= F.lit(as_of))
    return df.orderBy("kpi_date").toPandas()


def kpi_figure(pdf):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    # days still filling up are shaded, and their partial numbers not drawn as a drop
    pdf = pdf.copy()
    partial = pdf[~pdf["is_complete"]]["kpi_date"] if "is_complete" in pdf else []
    cols = ["dau", "wau", "mau", "stickiness", "conversion_rate", "revenue"]
    if "is_complete" in pdf:
        pdf.loc[~pdf["is_complete"], cols] = None
    for ax in axes:
        for day in partial:
            start = datetime.combine(day, datetime.min.time())
            ax.axvspan(start - timedelta(hours=12), start + timedelta(hours=12), color="grey",
                       alpha=0.25, label="day not over" if ax is axes[0] else None)  # fmt: skip
    for col in ("dau", "wau", "mau"):
        axes[0].plot(pdf["kpi_date"], pdf[col], label=col.upper())
    axes[0].set_ylabel("persons")
    axes[0].legend()
    axes[1].plot(pdf["kpi_date"], pdf["stickiness"], label="stickiness (DAU/MAU)")
    axes[1].plot(pdf["kpi_date"], pdf["conversion_rate"], label="conversion rate")
    axes[1].legend()
    axes[2].bar(pdf["kpi_date"], pdf["revenue"].astype(float))
    axes[2].set_ylabel("revenue")
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def retention_matrix(lake: Lake, cohort_type: str = "first_seen"):
    """Cohort week x week number; weeks not yet over are NaN (never a false 0)."""
    df = lake.read(RETENTION_COHORTS.name).filter(F.col("cohort_type") == cohort_type)
    df = df.withColumn("rate", F.when(F.col("is_complete"), F.col("retention_rate")))
    pdf = df.toPandas()
    return pdf.pivot(index="cohort_week", columns="week_number", values="rate")


def funnel_summary(lake: Lake):
    """Steps summed over days per funnel: persons and conversion from entry."""
    df = (
        lake.read(FUNNELS.name)
        .filter(F.col("is_complete"))  # entry days whose window has closed
        .groupBy("funnel_name", "step_index", "step_name")
        .agg(F.sum("persons").alias("persons"), F.sum("entrants").alias("entrants"))
    )
    pdf = df.orderBy("funnel_name", "step_index").toPandas()
    pdf["overall_conversion"] = pdf["persons"] / pdf["entrants"]
    return pdf


# ----------------------------------------------------------------------------- segments


def segment_sizes(lake: Lake, as_of: date | None = None):
    seg = lake.read(USER_SEGMENTS.name)
    day = _day(seg, "as_of_date", as_of)
    df = (
        seg.filter(F.col("as_of_date") == F.lit(day))
        .groupBy("segment_id", "segment_name", "model_version")
        .count()
    )
    return df.orderBy("segment_id").toPandas()


def segment_drift(lake: Lake):
    return lake.read(SEGMENT_DRIFT.name).orderBy("as_of_date").toPandas()


def segment_profile(settings: Settings) -> list[dict]:
    """The champion's segment profile (from its MLflow run)."""
    from behavior_lake.ml import tracking

    tracking.configure(settings.mlflow, settings.mlflow.segments_experiment)
    mv = tracking.version_by_alias(settings.segments.model_name, "champion")
    return tracking.download_json(mv.run_id, "segment_profile.json")


def profile_heatmap(profile: list[dict]):
    import matplotlib.pyplot as plt

    feats = list(profile[0]["z"]) if profile else []
    fig, ax = plt.subplots(figsize=(max(6, len(feats) * 0.6), 3 + len(profile) * 0.4))
    vals = [[p["z"][f] or 0.0 for f in feats] for p in profile]
    im = ax.imshow(vals, cmap="RdBu_r", vmin=-2, vmax=2, aspect="auto")
    ax.set_xticks(range(len(feats)), labels=feats, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(profile)), labels=[p["segment_name"] for p in profile], fontsize=8)
    fig.colorbar(im, ax=ax, label="z-score")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- churn


def churn_models(settings: Settings):
    """Champion and challenger of the churn model with their holdout metrics."""
    import mlflow
    import pandas as pd

    from behavior_lake.ml import tracking

    tracking.configure(settings.mlflow, settings.mlflow.churn_experiment)
    client = mlflow.MlflowClient()
    rows = []
    for alias in ("champion", "challenger"):
        try:
            mv = tracking.version_by_alias(settings.churn.model_name, alias)
        except tracking.ModelNotFoundError:
            continue
        m = client.get_run(mv.run_id).data.metrics
        rows.append(
            {
                "alias": alias,
                "version": mv.version,
                "run_id": mv.run_id,
                **{k: m.get(k) for k in ("roc_auc", "pr_auc", "base_rate", "brier",
                                         "lift_at_capacity", "baseline_recency_pr_auc",
                                         "c_index")},
            }
        )  # fmt: skip
    return pd.DataFrame(rows)


def calibration(settings: Settings, run_id: str):
    import pandas as pd

    from behavior_lake.ml import tracking

    got = tracking.download_json(run_id, "calibration_table.json")
    if isinstance(got, list):  # runs before every candidate was calibrated side by side
        got = {"model": got}
    return pd.DataFrame([{"model": k, **row} for k, rows in got.items() for row in rows])


def calibration_figure(table):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for model, part in table.groupby("model"):
        ax.plot(part["mean_predicted"], part["observed"], marker="o", label=model)
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfect")
    ax.set_xlabel("mean predicted")
    ax.set_ylabel("observed churn rate")
    ax.legend()
    fig.tight_layout()
    return fig


def score_deciles(lake: Lake, as_of: date | None = None):
    s = lake.read(CHURN_SCORES.name)
    day = _day(s, "as_of_date", as_of)
    df = (
        s.filter(F.col("as_of_date") == F.lit(day))
        .groupBy("risk_decile")
        .agg(
            F.count(F.lit(1)).alias("persons"),
            F.avg("churn_probability").alias("mean_probability"),
            F.avg("expected_active_days").alias("mean_expected_active_days"),
            F.avg("survival_probability").alias("mean_survival_probability"),
        )
    )
    return df.orderBy("risk_decile").toPandas()


def monitoring(lake: Lake):
    frames = {}
    for name in (SHADOW_COMPARISON.name, MODEL_MONITORING.name):
        frames[name] = lake.read(name).toPandas() if lake.exists(name) else None
    return frames
