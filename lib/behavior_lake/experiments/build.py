"""Plan -> compute -> write of the experiment tables (job gold_experiments).

Everything is recomputed from silver and gold on each run (the inputs are persons x
dates, not events x dates), so reruns are idempotent and a late silver correction or an
erasure reaches the results on the next run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from behavior_lake.config import ExperimentMetric, Settings
from behavior_lake.contracts.activation import DECISIONS
from behavior_lake.contracts.experiments import ALERTS, CAMPAIGN_LIFT, EXPOSURES, RESULTS
from behavior_lake.contracts.gold import USER_FEATURES
from behavior_lake.contracts.silver import EVENTS, SESSIONS
from behavior_lake.experiments import analysis, metrics
from behavior_lake.experiments.exposures import campaign_units, exposures, units
from behavior_lake.lake import Lake
from behavior_lake.spark import Caches

log = logging.getLogger(__name__)
SRM = "sample_ratio_mismatch"


@dataclass
class ExperimentStats:
    rows: dict[str, int] = field(default_factory=dict)
    experiments: int = 0
    excluded_persons: int = 0
    srm_flagged: list[str] = field(default_factory=list)
    campaigns: int = 0


EVENT_COLS = ("message_id", "person_id", "event_name", "event_ts", "event_date", "revenue",
              "properties")  # fmt: skip


def end_date(events: DataFrame, as_of: date | None) -> date | None:
    """The last analysis date: `as_of` when given, else the last day with events."""
    if as_of is not None:
        return as_of
    return events.agg(F.max("event_date")).first()[0]


def analyse_units(
    lake: Lake,
    settings: Settings,
    events: DataFrame,
    unit_rows: DataFrame,
    end: date,
    metric_set: Mapping[str, ExperimentMetric],
    caches: Caches,
) -> list[dict[str, Any]]:
    """Result dicts for `unit_rows` (experiment_id, variation_id, person_id,
    exposure_ts, exposure_date) over `metric_set`, every date up to `end`."""
    cfg = settings.experiments
    unit_rows = caches.keep(unit_rows.filter(F.col("exposure_date") <= F.lit(end)))
    acts = metrics.activity(events, lake.read(SESSIONS.name))
    names = sorted({m.covariate for m in metric_set.values() if m.covariate})
    feats = lake.read(USER_FEATURES) if names and lake.exists(USER_FEATURES) else None
    if names and feats is None:
        log.info("no %s yet: CUPED covariates are 0 (no variance reduction)", USER_FEATURES)
    dates = caches.keep(metrics.looks(unit_rows, end))
    days = metrics.unit_days(unit_rows, acts, metric_set, cfg.window_days)
    covs = metrics.covariates(unit_rows, feats, names)
    values = metrics.per_look(unit_rows, days, dates, covs, metric_set)
    sums = [r.asDict() for r in metrics.metric_sums(values, metric_set, cfg.window_days).collect()]
    counts = [r.asDict() for r in metrics.split_counts(unit_rows, dates).collect()]
    log.info("%d variation x metric x date aggregates from %d split counts", len(sums), len(counts))
    return analysis.results(sums, counts, cfg, metric_set)


def experiment_frames(
    lake: Lake,
    settings: Settings,
    events: DataFrame,
    end: date,
    caches: Caches,
    stats: ExperimentStats,
) -> tuple[DataFrame, DataFrame, DataFrame]:
    """(gold.experiment_exposures, gold.experiment_results, ops.experiment_alerts)."""
    spark = lake.spark
    now = datetime.now(UTC).replace(tzinfo=None)
    expo = caches.keep(exposures(events))
    summary = (
        expo.groupBy("experiment_id")
        .agg(
            F.first("experiment_name", ignorenulls=True).alias("experiment_name"),
            F.sum(F.col("is_excluded").cast("long")).alias("excluded"),
            F.count(F.lit(1)).alias("persons"),
        )
        .collect()
    )
    stats.experiments = len(summary)
    stats.excluded_persons = sum(int(r["excluded"]) for r in summary)
    for r in summary:
        log.info("experiment %s: %d exposed person(s), %d excluded (seen in several variations)",
                 r["experiment_id"], r["persons"], r["excluded"])  # fmt: skip
    rows = (
        analyse_units(
            lake, settings, events, units(expo), end, settings.experiments.metrics, caches
        )
        if summary
        else []
    )
    names = {r["experiment_id"]: r["experiment_name"] for r in summary}
    excluded = {r["experiment_id"]: int(r["excluded"]) for r in summary}
    for r in rows:
        r.update(experiment_name=names.get(r["experiment_id"]), computed_at=now,
                 excluded_persons=excluded.get(r["experiment_id"], 0))  # fmt: skip
    result_df = (
        spark.createDataFrame(rows, RESULTS.schema)
        if rows
        else spark.createDataFrame([], RESULTS.schema)
    )
    alerts = _alerts(rows, settings, now)
    stats.srm_flagged = sorted({a["experiment_id"] for a in alerts if a["analysis_date"] == end})
    return expo, result_df, spark.createDataFrame(alerts, ALERTS.schema)


def _alerts(rows: list[dict[str, Any]], settings: Settings, now: datetime) -> list[dict[str, Any]]:
    """One alert per experiment and date whose split fails the sample-ratio test."""
    seen: dict[tuple[str, date], dict[str, Any]] = {}
    for r in rows:
        if r["srm_flag"]:
            seen[(r["experiment_id"], r["analysis_date"])] = dict(
                experiment_id=r["experiment_id"],
                analysis_date=r["analysis_date"],
                kind=SRM,
                p_value=r["srm_p_value"],
                threshold=settings.experiments.srm_alpha,
                detail=r["_srm_detail"],
                detected_at=now,
            )
    for r in rows:
        r.pop("_srm_detail", None)
    return list(seen.values())


def campaign_frame(
    lake: Lake,
    settings: Settings,
    events: DataFrame,
    end: date,
    caches: Caches,
    stats: ExperimentStats,
) -> DataFrame | None:
    """gold.campaign_lift from activation.decisions (None when there are none yet)."""
    if not lake.exists(DECISIONS.name):
        log.info("no %s yet: no campaign lift", DECISIONS.name)
        return None
    rules = settings.activation.rules
    targets = {r.campaign: r.target_metric for r in rules}
    all_metrics = settings.experiments.metrics
    cfg_metrics = {
        name: _with_window(all_metrics[name], settings.experiments.campaign_window_days)
        for name in set(targets.values()) if name in all_metrics
    }  # fmt: skip
    if not cfg_metrics:
        log.info("no campaign target metric is among experiments.metrics: no campaign lift")
        return None
    cfg = replace(settings.experiments, control_variation="holdout", splits={})
    s = replace(settings, experiments=cfg)
    rows = analyse_units(
        lake, s, events, campaign_units(lake.read(DECISIONS.name)), end, cfg_metrics, caches
    )
    now = datetime.now(UTC).replace(tzinfo=None)
    keep = [
        dict({k: v for k, v in r.items() if k in CAMPAIGN_LIFT.schema.fieldNames()},
             campaign=r["experiment_id"], computed_at=now)
        for r in rows if targets.get(r["experiment_id"]) == r["metric"]
    ]  # fmt: skip
    stats.campaigns = len({r["campaign"] for r in keep})
    return lake.spark.createDataFrame(keep, CAMPAIGN_LIFT.schema)


def _with_window(m: ExperimentMetric, days: int) -> ExperimentMetric:
    return m if m.to_day else replace(m, to_day=days)


def build_experiments(
    lake: Lake, settings: Settings, caches: Caches, as_of: date | None = None
) -> ExperimentStats:
    stats = ExperimentStats()
    # read once: exposures, behaviour, the end date and the campaigns all use it
    events = caches.large(lake.read(EVENTS).select(*EVENT_COLS))
    end = end_date(events, as_of)
    if end is None:
        log.info("silver.events is empty: nothing to analyse")
        return stats
    t0 = time.monotonic()
    log.info("step 1/2 experiments: exposures and results up to %s", end)
    expo, results_df, alerts = experiment_frames(lake, settings, events, end, caches, stats)
    for spec, df in ((EXPOSURES, expo), (RESULTS, results_df), (ALERTS, alerts)):
        stats.rows[spec.name] = lake.overwrite(
            spec.name, df.select(*spec.schema.fieldNames())
        ).rows_written
    log.info("step 1/2 done in %.1fs: %d experiment(s), %d result row(s), SRM flagged: %s",
             time.monotonic() - t0, stats.experiments, stats.rows[RESULTS.name],
             ", ".join(stats.srm_flagged) or "none")  # fmt: skip
    t0 = time.monotonic()
    log.info("step 2/2 campaign lift (treated vs holdout)")
    lift = campaign_frame(lake, settings, events, end, caches, stats)
    if lift is not None:
        res = lake.overwrite(CAMPAIGN_LIFT.name, lift.select(*CAMPAIGN_LIFT.schema.fieldNames()))
        stats.rows[CAMPAIGN_LIFT.name] = res.rows_written
    log.info("step 2/2 done in %.1fs: %d campaign(s)", time.monotonic() - t0, stats.campaigns)
    return stats
