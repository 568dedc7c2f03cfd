"""The insights panels: what each shows, from which table, and what it says.

A `Dataset` is one SQL query over the lake's tables (written `{layer.table}`; the report
runs it with Spark over the local tables, the Databricks dashboard over Unity Catalog).
A `Panel` draws a dataset as a chart and states one takeaway computed from the same
rows, so every number on a page traces back to a query and a table.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from behavior_lake.insights import svg

Rows = list[dict[str, Any]]
TABLE_REF = re.compile(r"\{([a-z_]+\.[a-z_]+)\}")


@dataclass(frozen=True)
class Dataset:
    id: str
    title: str
    sql: str
    # a boolean column, true for periods that are over (lines leave the others out)
    complete_col: str | None = None

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(TABLE_REF.findall(self.sql)))

    def render_sql(self, names: Mapping[str, str]) -> str:
        """The query with each `{layer.table}` replaced by its name in `names`."""
        return TABLE_REF.sub(lambda m: names[m.group(1)], self.sql).strip()


@dataclass(frozen=True)
class Widget:
    """How a dashboard draws the panel: a widget type and its encodings (field names
    are dataset columns)."""

    kind: str  # line | bar | table | heatmap
    x: str
    y: tuple[str, ...]
    x_type: str = "categorical"  # categorical | temporal | quantitative
    color: str | None = None


@dataclass(frozen=True)
class Panel:
    id: str
    page: str
    title: str
    dataset: Dataset
    draw: Callable[[str, str, Rows], str]  # (chart id, title, rows) -> svg
    takeaway: Callable[[Rows], str]
    widget: Widget
    note: str = ""  # how to read it (one line under the chart)


@dataclass(frozen=True)
class Page:
    id: str
    title: str
    intro: str
    panels: list[Panel] = field(default_factory=list)


# ----------------------------------------------------------------------------- helpers


def _f(v: Any) -> float | None:
    return None if v is None else float(v)


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v * 100:.1f}%"


def _num(v: float | None) -> str:
    return svg.short(v)


def _mean(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return sum(vals) / len(vals) if vals else None


# ----------------------------------------------------------------------------- activity

KPIS = Dataset(
    "daily_kpis",
    "Daily activity (all platforms)",
    """
SELECT kpi_date, dau, wau, mau, sessions, orders, CAST(revenue AS DOUBLE) AS revenue,
       conversion_rate, is_complete, full_window
FROM {gold.daily_kpis}
WHERE platform = 'all'
ORDER BY kpi_date
""",
    complete_col="is_complete",
)


def _kpi_lines(cols: Sequence[str], fmt: str = "num") -> Callable[[str, str, Rows], str]:
    def draw(chart_id: str, title: str, rows: Rows) -> str:
        x = [str(r["kpi_date"]) for r in rows]
        series = {c.upper() if len(c) <= 3 else c.replace("_", " "): [_f(r[c]) for r in rows]
                  for c in cols}  # fmt: skip
        shaded = [not r[KPIS.complete_col] for r in rows]
        return svg.line_chart(chart_id, title, x, series, shaded, fmt)

    return draw


def _complete(rows: Rows) -> Rows:
    return [r for r in rows if r["is_complete"]]


def kpi_takeaway(rows: Rows) -> str:
    done = _complete(rows)
    if len(done) < 2:
        return "Not enough complete days yet to describe a trend."
    last7, prev7 = done[-7:], done[-14:-7]
    now = _mean([r["dau"] for r in last7])
    before = _mean([r["dau"] for r in prev7]) if prev7 else None
    trend = ""
    if before:
        change = (now - before) / before
        trend = f", {'up' if change >= 0 else 'down'} {abs(change) * 100:.1f}% on the 7 days before"
    partial = [str(r["kpi_date"]) for r in rows if not r["is_complete"]]
    tail = f" {', '.join(partial)} is still filling up (shaded, not a drop)." if partial else ""
    return (
        f"Daily active persons averaged {_num(now)} over the last {len(last7)} complete days"
        f"{trend}; {_num(done[-1]['mau'])} were active in the 30 days to {done[-1]['kpi_date']}."
        + tail
    )


def revenue_takeaway(rows: Rows) -> str:
    done = _complete(rows)
    if not done:
        return "No complete day yet."
    last30 = done[-30:]
    rev = sum(r["revenue"] or 0 for r in last30)
    orders = sum(r["orders"] or 0 for r in last30)
    aov = rev / orders if orders else None
    return (
        f"{_num(rev)} revenue from {_num(orders)} orders in the last {len(last30)} complete days"
        + (f" (average order {_num(aov)})." if aov else ".")
    )


def conversion_takeaway(rows: Rows) -> str:
    done = [r for r in _complete(rows) if r["conversion_rate"] is not None]
    if not done:
        return "No converting sessions recorded yet."
    last7 = _mean([r["conversion_rate"] for r in done[-7:]])
    best = max(done, key=lambda r: r["conversion_rate"])
    return (
        f"{_pct(last7)} of sessions converted over the last 7 complete days; the best day was "
        f"{best['kpi_date']} at {_pct(best['conversion_rate'])}."
    )


# ----------------------------------------------------------------------------- retention

RETENTION = Dataset(
    "retention",
    "Weekly retention by first-seen cohort",
    """
SELECT cohort_week, week_number, cohort_size, retained, retention_rate, is_complete
FROM {gold.retention_cohorts}
WHERE cohort_type = 'first_seen'
ORDER BY cohort_week, week_number
""",
)


def draw_retention(chart_id: str, title: str, rows: Rows) -> str:
    cohorts = sorted({r["cohort_week"] for r in rows})
    weeks = sorted({r["week_number"] for r in rows})
    size = {r["cohort_week"]: r["cohort_size"] for r in rows}
    cell = {(r["cohort_week"], r["week_number"]): r for r in rows}
    values = [
        [
            _f(cell[(c, w)]["retention_rate"])
            if (c, w) in cell and cell[(c, w)]["is_complete"]
            else None
            for w in weeks
        ]
        for c in cohorts
    ]
    labels = [f"{c} ({size[c]})" for c in cohorts]
    return svg.heatmap(chart_id, title, labels, [f"w{w}" for w in weeks], values)


def retention_takeaway(rows: Rows) -> str:
    w1 = [r for r in rows if r["week_number"] == 1 and r["is_complete"]]
    if not w1:
        return "No cohort has a complete second week yet."
    avg = sum(r["retained"] for r in w1) / sum(r["cohort_size"] for r in w1)
    best = max(w1, key=lambda r: r["retention_rate"])
    worst = min(w1, key=lambda r: r["retention_rate"])
    return (
        f"{_pct(avg)} of new persons came back in their second week (cohorts weighted by size); "
        f"best cohort {best['cohort_week']} at {_pct(best['retention_rate'])}, weakest "
        f"{worst['cohort_week']} at {_pct(worst['retention_rate'])}. Weeks not yet over are hatched."
    )


# ----------------------------------------------------------------------------- funnels

FUNNELS = Dataset(
    "funnels",
    "Funnels over complete entry days",
    """
SELECT funnel_name, step_index, step_name, persons,
       persons / FIRST_VALUE(persons) OVER (PARTITION BY funnel_name ORDER BY step_index)
         AS overall_conversion,
       persons / LAG(persons) OVER (PARTITION BY funnel_name ORDER BY step_index)
         AS step_conversion
FROM (
  SELECT funnel_name, step_index, step_name, SUM(persons) AS persons
  FROM {gold.funnels}
  WHERE is_complete
  GROUP BY funnel_name, step_index, step_name
) f
ORDER BY funnel_name, step_index
""",
)


def draw_funnels(chart_id: str, title: str, rows: Rows) -> str:
    labels = [f"{r['funnel_name']}: {r['step_index'] + 1}. {r['step_name']}" for r in rows]
    notes = [
        "" if r["step_conversion"] is None else f"{_pct(r['step_conversion'])} of previous"
        for r in rows
    ]
    return svg.bar_chart(chart_id, title, labels, [_f(r["persons"]) for r in rows], notes=notes)


def funnel_takeaway(rows: Rows) -> str:
    steps = [r for r in rows if r["step_conversion"] is not None]
    if not steps:
        return "No complete funnel window yet."
    worst = min(steps, key=lambda r: r["step_conversion"])
    ends = {r["funnel_name"]: r for r in rows}
    overall = "; ".join(f"{n}: {_pct(r['overall_conversion'])} end to end" for n, r in ends.items())
    return (
        f"The biggest drop is at {worst['funnel_name']} step {worst['step_index'] + 1} "
        f"({worst['step_name']}): only {_pct(worst['step_conversion'])} of the previous step "
        f"get there. {overall}."
    )


# ----------------------------------------------------------------------------- paths

PATHS = Dataset(
    "top_paths",
    "Most frequent session paths",
    """
SELECT rank, path, steps, count, probability
FROM {gold.paths}
WHERE kind = 'top_path'
ORDER BY rank
LIMIT 10
""",
)


def draw_paths(chart_id: str, title: str, rows: Rows) -> str:
    return svg.bar_chart(
        chart_id, title, [r["path"] for r in rows], [_f(r["count"]) for r in rows],
        notes=[_pct(r["probability"]) for r in rows],
    )  # fmt: skip


def paths_takeaway(rows: Rows) -> str:
    if not rows:
        return "No frequent paths yet."
    top = rows[0]
    return (
        f"The most common session path is {top['path']} ({_num(top['count'])} sessions, "
        f"{_pct(top['probability'])}); the top {len(rows)} paths cover "
        f"{_pct(sum(r['probability'] for r in rows))} of sessions."
    )


# ----------------------------------------------------------------------------- segments

SEGMENTS = Dataset(
    "segments",
    "Segments in the latest snapshot",
    """
WITH latest AS (SELECT MAX(as_of_date) AS d FROM {gold.user_segments})
SELECT s.segment_id, s.segment_name, COUNT(*) AS persons,
       COUNT(*) / SUM(COUNT(*)) OVER () AS share,
       AVG(f.sessions_30d) AS sessions_30d, AVG(f.orders_30d) AS orders_30d,
       AVG(f.revenue_30d) AS revenue_30d, AVG(f.recency_days_event) AS recency_days,
       MAX(s.as_of_date) AS as_of_date
FROM {gold.user_segments} s
JOIN latest ON s.as_of_date = latest.d
LEFT JOIN {gold.user_features} f ON f.person_id = s.person_id AND f.as_of_date = s.as_of_date
GROUP BY s.segment_id, s.segment_name
ORDER BY s.segment_id
""",
)


def draw_segments(chart_id: str, title: str, rows: Rows) -> str:
    return svg.bar_chart(
        chart_id, title, [f"{r['segment_id']} {r['segment_name']}" for r in rows],
        [_f(r["share"]) for r in rows], fmt="pct",
        notes=[f"{_num(r['persons'])} persons, {_num(r['revenue_30d'])} revenue/30d" for r in rows],
    )  # fmt: skip


def segments_takeaway(rows: Rows) -> str:
    if not rows:
        return "No segment assignment yet."
    big = max(rows, key=lambda r: r["share"])
    rich = max(rows, key=lambda r: r["revenue_30d"] or 0)
    return (
        f"{len(rows)} segments on {rows[0]['as_of_date']}: the largest is "
        f"'{big['segment_name']}' ({_pct(big['share'])} of persons); '{rich['segment_name']}' "
        f"spends most, {_num(rich['revenue_30d'])} per person in 30 days."
    )


SEGMENT_DRIFT = Dataset(
    "segment_drift",
    "Segment share drift against training",
    """
SELECT as_of_date, MAX(psi) AS psi, MAX(psi_threshold) AS threshold,
       MAX(CAST(retrain_recommended AS INT)) AS retrain_recommended
FROM {ops.segment_drift}
GROUP BY as_of_date
ORDER BY as_of_date
""",
)


def draw_drift(chart_id: str, title: str, rows: Rows) -> str:
    x = [str(r["as_of_date"]) for r in rows]
    return svg.line_chart(
        chart_id, title, x,
        {"PSI": [_f(r["psi"]) for r in rows], "threshold": [_f(r["threshold"]) for r in rows]},
    )  # fmt: skip


def drift_takeaway(rows: Rows) -> str:
    if not rows:
        return "No segment drift measured yet."
    last = rows[-1]
    verdict = "retraining is recommended" if last["retrain_recommended"] else "no retrain needed"
    return (
        f"On {last['as_of_date']} segment shares moved by PSI {last['psi']:.3f} against "
        f"training (threshold {last['threshold']:.2f}): {verdict}."
    )


# ----------------------------------------------------------------------------- churn

CHURN_DECILES = Dataset(
    "churn_deciles",
    "Churn risk by decile (latest scoring)",
    """
WITH latest AS (SELECT MAX(as_of_date) AS d FROM {gold.churn_scores})
SELECT c.risk_decile, COUNT(*) AS persons, AVG(c.churn_probability) AS mean_churn_probability,
       SUM(CAST(c.in_capacity AS INT)) AS in_capacity,
       SUM(c.churn_probability * COALESCE(f.revenue_30d, 0)) AS value_at_risk,
       AVG(c.expected_active_days) AS expected_active_days,
       MAX(c.as_of_date) AS as_of_date
FROM {gold.churn_scores} c
JOIN latest ON c.as_of_date = latest.d
LEFT JOIN {gold.user_features} f ON f.person_id = c.person_id AND f.as_of_date = c.as_of_date
GROUP BY c.risk_decile
ORDER BY c.risk_decile
""",
)


def draw_deciles(chart_id: str, title: str, rows: Rows) -> str:
    return svg.bar_chart(
        chart_id, title, [f"decile {r['risk_decile']}" for r in rows],
        [_f(r["mean_churn_probability"]) for r in rows], fmt="pct",
        notes=[f"{_num(r['persons'])} persons, {_num(r['value_at_risk'])} at risk"
               + (f", {r['in_capacity']} in capacity" if r["in_capacity"] else "") for r in rows],
        highlight=[bool(r["in_capacity"]) for r in rows],
    )  # fmt: skip


def churn_takeaway(rows: Rows) -> str:
    if not rows:
        return "No churn scores yet (no champion model has been promoted)."
    cap = sum(r["in_capacity"] for r in rows)
    persons = sum(r["persons"] for r in rows)
    risk = sum(r["value_at_risk"] or 0 for r in rows)
    top = rows[0]
    cap_risk = sum(r["value_at_risk"] or 0 for r in rows if r["in_capacity"])
    return (
        f"On {top['as_of_date']}, {_num(persons)} active persons were scored; the riskiest "
        f"decile averages {_pct(top['mean_churn_probability'])} churn probability. The "
        f"{_num(cap)} persons within contact capacity (red) carry {_num(cap_risk)} of the "
        f"{_num(risk)} expected 30-day revenue at risk."
    )


CHURN_SEGMENTS = Dataset(
    "churn_by_segment",
    "Churn risk by segment (latest scoring)",
    """
WITH latest AS (SELECT MAX(as_of_date) AS d FROM {gold.churn_scores})
SELECT COALESCE(s.segment_name, 'not segmented') AS segment_name, COUNT(*) AS persons,
       AVG(c.churn_probability) AS mean_churn_probability,
       SUM(CAST(c.in_capacity AS INT)) AS in_capacity,
       SUM(c.churn_probability * COALESCE(f.revenue_30d, 0)) AS value_at_risk
FROM {gold.churn_scores} c
JOIN latest ON c.as_of_date = latest.d
LEFT JOIN {gold.user_segments} s ON s.person_id = c.person_id AND s.as_of_date = c.as_of_date
LEFT JOIN {gold.user_features} f ON f.person_id = c.person_id AND f.as_of_date = c.as_of_date
GROUP BY COALESCE(s.segment_name, 'not segmented')
ORDER BY mean_churn_probability DESC
""",
)


def draw_churn_segments(chart_id: str, title: str, rows: Rows) -> str:
    return svg.bar_chart(
        chart_id, title, [r["segment_name"] for r in rows],
        [_f(r["mean_churn_probability"]) for r in rows], fmt="pct",
        notes=[f"{_num(r['persons'])} persons, {r['in_capacity']} in capacity, "
               f"{_num(r['value_at_risk'])} at risk" for r in rows],
    )  # fmt: skip


def churn_segments_takeaway(rows: Rows) -> str:
    if not rows:
        return "No churn scores yet."
    top = rows[0]
    most = max(rows, key=lambda r: r["value_at_risk"] or 0)
    return (
        f"'{top['segment_name']}' is the most likely to churn ({_pct(top['mean_churn_probability'])} "
        f"on average); '{most['segment_name']}' has the most revenue at risk "
        f"({_num(most['value_at_risk'])})."
    )


# ----------------------------------------------------------------------------- quality

QUARANTINE = Dataset(
    "quarantine",
    "Lines set aside at ingestion, by reason",
    """
SELECT q.reason, q.lines, t.lines_read, q.lines / t.lines_read AS share_of_lines
FROM (SELECT reason, COUNT(*) AS lines FROM {bronze.quarantine} GROUP BY reason) q
CROSS JOIN (SELECT SUM(lines_read) AS lines_read FROM {ops.ingest_batches}) t
ORDER BY q.lines DESC
""",
)


def draw_quarantine(chart_id: str, title: str, rows: Rows) -> str:
    return svg.bar_chart(
        chart_id, title, [r["reason"] for r in rows], [_f(r["lines"]) for r in rows],
        notes=[f"{_pct(r['share_of_lines'])} of lines" for r in rows],
    )  # fmt: skip


def quarantine_takeaway(rows: Rows) -> str:
    if not rows:
        return "Every landed line was loaded: nothing quarantined."
    total = sum(r["lines"] for r in rows)
    return (
        f"{_num(total)} of {_num(rows[0]['lines_read'])} landed lines "
        f"({_pct(total / rows[0]['lines_read'] if rows[0]['lines_read'] else None)}) were "
        f"quarantined; the main reason is {rows[0]['reason']} ({_num(rows[0]['lines'])})."
    )


FEATURE_DRIFT = Dataset(
    "feature_drift",
    "Features flagged for drift per snapshot",
    """
SELECT as_of_date, SUM(CAST(is_flagged AS INT)) AS flagged, COUNT(*) AS features
FROM {ops.feature_drift}
GROUP BY as_of_date
ORDER BY as_of_date
""",
)


def draw_feature_drift(chart_id: str, title: str, rows: Rows) -> str:
    return svg.bar_chart(
        chart_id, title, [str(r["as_of_date"]) for r in rows], [_f(r["flagged"]) for r in rows],
        notes=[f"of {r['features']} features" for r in rows],
    )  # fmt: skip


def feature_drift_takeaway(rows: Rows) -> str:
    if not rows:
        return "No feature drift measured yet (one snapshot or none)."
    last = rows[-1]
    return (
        f"The latest snapshot ({last['as_of_date']}) has {last['flagged']} of "
        f"{last['features']} features flagged (PSI or null rate beyond their thresholds)."
    )


SLA = Dataset(
    "sla_breaches",
    "SLA breaches by task",
    """
SELECT CONCAT(task, ' (', kind, ')') AS task_kind, COUNT(*) AS breaches,
       CAST(MAX(detected_at) AS STRING) AS last_detected
FROM {ops.sla_breaches}
GROUP BY task, kind
ORDER BY breaches DESC
""",
)


def draw_sla(chart_id: str, title: str, rows: Rows) -> str:
    return svg.bar_chart(
        chart_id, title, [r["task_kind"] for r in rows], [_f(r["breaches"]) for r in rows],
        notes=[f"last {r['last_detected'][:16]}" for r in rows],
    )  # fmt: skip


def sla_takeaway(rows: Rows) -> str:
    if not rows:
        return "No SLA breach recorded: every task ran within its time and freshness limits."
    top = rows[0]
    return f"{sum(r['breaches'] for r in rows)} SLA breaches; most often {top['task_kind']}."


# ----------------------------------------------------------------------------- experiments

EXPERIMENT_LIFTS = Dataset(
    "experiment_lifts",
    "Experiment results at the last analysis date",
    """
SELECT experiment_id, experiment_name, metric, variation_id, is_guardrail, analysis_date,
       n_control, n_variation, relative_lift, relative_ci_low, relative_ci_high,
       cuped_relative_lift, variance_reduction, p_value_bh, is_significant, seq_p_value,
       seq_significant, srm_flag,
       CONCAT(experiment_id, ' · ', metric) AS label
FROM {gold.experiment_results}
WHERE is_latest
ORDER BY experiment_id, is_guardrail, metric, variation_id
""",
)


def draw_lifts(chart_id: str, title: str, rows: Rows) -> str:
    return svg.interval_chart(
        chart_id, title, [r["label"] for r in rows], [_f(r["relative_lift"]) for r in rows],
        [_f(r["relative_ci_low"]) for r in rows], [_f(r["relative_ci_high"]) for r in rows],
        highlight=[bool(r["is_significant"]) for r in rows],
    )  # fmt: skip


def lifts_takeaway(rows: Rows) -> str:
    if not rows:
        return "No experiment results yet (no Experiment Viewed events in silver)."
    broken = sorted({r["experiment_id"] for r in rows if r["srm_flag"]})
    wins = [r for r in rows if r["is_significant"] and not r["srm_flag"] and not r["is_guardrail"]]
    exps = sorted({r["experiment_id"] for r in rows})
    text = f"{len(exps)} experiments on {rows[0]['analysis_date']}: "
    if wins:
        text += (
            "significant after Benjamini-Hochberg: "
            + "; ".join(
                f"{r['experiment_id']} {r['metric']} {_pct(r['relative_lift'])}" for r in wins[:4]
            )
            + ". "
        )
    else:
        text += "no significant effect after Benjamini-Hochberg. "
    if broken:
        text += f"Do not trust {', '.join(broken)}: the split does not match the plan (SRM)."
    return text


EXPERIMENT_SPLITS = Dataset(
    "experiment_splits",
    "Persons per variation and the sample-ratio check",
    """
SELECT experiment_id, variation_id, MAX(analysis_date) AS analysis_date,
       MAX(n_control) AS n_control, MAX(n_variation) AS n_variation,
       MAX(srm_p_value) AS srm_p_value, MAX(CAST(srm_flag AS INT)) AS srm_flag,
       MAX(excluded_persons) AS excluded_persons
FROM {gold.experiment_results}
WHERE is_latest AND metric = (SELECT MIN(metric) FROM {gold.experiment_results})
GROUP BY experiment_id, variation_id
ORDER BY experiment_id, variation_id
""",
)


def draw_splits(chart_id: str, title: str, rows: Rows) -> str:
    labels, values, notes, hot = [], [], [], []
    for r in rows:
        total = (r["n_control"] or 0) + (r["n_variation"] or 0)
        labels.append(f"{r['experiment_id']} · {r['variation_id']}")
        values.append(r["n_variation"] / total if total else None)
        notes.append(f"{_num(r['n_variation'])} of {_num(total)}, SRM p={r['srm_p_value']:.2g}")
        hot.append(bool(r["srm_flag"]))
    return svg.bar_chart(chart_id, title, labels, values, fmt="pct", notes=notes, highlight=hot)


def splits_takeaway(rows: Rows) -> str:
    if not rows:
        return "No experiment results yet."
    broken = [r for r in rows if r["srm_flag"]]
    excluded = sum(r["excluded_persons"] or 0 for r in rows)
    head = (
        "Sample-ratio mismatch in " + ", ".join(
            f"{r['experiment_id']} (p={r['srm_p_value']:.1g})" for r in broken
        ) + ": find the cause before reading its results."
        if broken else "Every split matches its plan (no sample-ratio mismatch)."
    )  # fmt: skip
    return f"{head} {_num(excluded)} persons seen in several variations are excluded."


CAMPAIGN_LIFTS = Dataset(
    "campaign_lifts",
    "Campaign lift: treated vs holdout",
    """
SELECT campaign, metric, analysis_date, n_control AS n_holdout, n_variation AS n_treated,
       mean_control AS holdout_rate, mean_variation AS treated_rate, lift, lift_ci_low,
       lift_ci_high, p_value, CONCAT(campaign, ' · ', metric) AS label
FROM {gold.campaign_lift}
WHERE is_latest
ORDER BY campaign
""",
)


def draw_campaigns(chart_id: str, title: str, rows: Rows) -> str:
    return svg.interval_chart(
        chart_id, title, [r["label"] for r in rows], [_f(r["lift"]) for r in rows],
        [_f(r["lift_ci_low"]) for r in rows], [_f(r["lift_ci_high"]) for r in rows],
        highlight=[(r["p_value"] or 1) < 0.05 for r in rows],
    )  # fmt: skip


def campaigns_takeaway(rows: Rows) -> str:
    if not rows:
        return "No campaign with a holdout has decisions yet (activation.decisions)."
    best = max(rows, key=lambda r: r["lift"] or 0)
    return (
        f"{len(rows)} campaigns measured against their holdout; '{best['campaign']}' adds "
        f"{_pct(best['lift'])} {best['metric']} ({_pct(best['holdout_rate'])} -> "
        f"{_pct(best['treated_rate'])}, p={best['p_value']:.2g})."
    )


# ----------------------------------------------------------------------------- pages

PAGES: list[Page] = [
    Page("activity", "Activity", "Who uses the product and what it earns, day by day.", [
        Panel("active_persons", "activity", "Active persons (DAU, WAU, MAU)", KPIS,
              _kpi_lines(["dau", "wau", "mau"]), kpi_takeaway,
              Widget("line", "kpi_date", ("dau", "wau", "mau"), "temporal"),
              "WAU/MAU count persons active in the 7/30 days to the day; hatched days are not over."),
        Panel("revenue", "activity", "Revenue", KPIS,
              _kpi_lines(["revenue"]), revenue_takeaway,
              Widget("line", "kpi_date", ("revenue",), "temporal")),
        Panel("conversion", "activity", "Session conversion rate", KPIS,
              _kpi_lines(["conversion_rate"], "pct"), conversion_takeaway,
              Widget("line", "kpi_date", ("conversion_rate",), "temporal")),
    ]),
    Page("retention", "Retention", "How many persons come back, week after week.", [
        Panel("retention_heatmap", "retention", "Weekly retention by cohort", RETENTION,
              draw_retention, retention_takeaway,
              Widget("heatmap", "week_number", ("retention_rate",), color="cohort_week"),
              "Rows: the week persons were first seen (cohort size); columns: weeks since."),
    ]),
    Page("funnels", "Funnels & paths", "Where persons drop out, and the paths they take.", [
        Panel("funnel_steps", "funnels", "Funnel steps (persons reaching each step)", FUNNELS,
              draw_funnels, funnel_takeaway,
              Widget("bar", "step_name", ("persons",), color="funnel_name"),
              "Only entry days whose conversion window has closed count."),
        Panel("top_paths", "funnels", "Top session paths", PATHS, draw_paths, paths_takeaway,
              Widget("bar", "path", ("count",))),
    ]),
    Page("segments", "Segments", "Behavioural segments: who is in them and whether they hold.", [
        Panel("segment_shares", "segments", "Segment sizes", SEGMENTS, draw_segments,
              segments_takeaway, Widget("bar", "segment_name", ("share",))),
        Panel("segment_drift", "segments", "Segment drift (PSI)", SEGMENT_DRIFT, draw_drift,
              drift_takeaway, Widget("line", "as_of_date", ("psi", "threshold"), "temporal")),
    ]),
    Page("churn", "Churn risk", "Who is likely to leave, and what that is worth.", [
        Panel("churn_deciles", "churn", "Churn probability by risk decile", CHURN_DECILES,
              draw_deciles, churn_takeaway,
              Widget("bar", "risk_decile", ("mean_churn_probability",)),
              "Value at risk = churn probability x the person's revenue in the last 30 days."),
        Panel("churn_segments", "churn", "Churn probability by segment", CHURN_SEGMENTS,
              draw_churn_segments, churn_segments_takeaway,
              Widget("bar", "segment_name", ("mean_churn_probability",))),
    ]),
    Page("experiments", "Experiments", "A/B tests and campaign holdouts: what changed behaviour, and whether to trust it.", [
        Panel("experiment_lifts", "experiments", "Relative lift with 95% intervals (red: significant)",
              EXPERIMENT_LIFTS, draw_lifts, lifts_takeaway,
              Widget("bar", "label", ("relative_lift",)),
              "Fixed-horizon intervals at the last analysis date; seq_p_value in the table stays valid under daily looks."),
        Panel("experiment_splits", "experiments", "Share of persons in each variation",
              EXPERIMENT_SPLITS, draw_splits, splits_takeaway,
              Widget("bar", "variation_id", ("n_variation",), color="experiment_id"),
              "Red: the split differs from the plan (chi-square p below experiments.srm_alpha)."),
        Panel("campaign_lifts", "experiments", "Campaign lift over the holdout (absolute)",
              CAMPAIGN_LIFTS, draw_campaigns, campaigns_takeaway,
              Widget("bar", "label", ("lift",))),
    ]),
    Page("quality", "Data quality", "What the pipeline set aside or flagged, and why.", [
        Panel("quarantine", "quality", "Quarantined lines by reason", QUARANTINE,
              draw_quarantine, quarantine_takeaway, Widget("bar", "reason", ("lines",))),
        Panel("feature_drift", "quality", "Feature drift flags", FEATURE_DRIFT,
              draw_feature_drift, feature_drift_takeaway,
              Widget("bar", "as_of_date", ("flagged",), "temporal")),
        Panel("sla_breaches", "quality", "SLA breaches", SLA, draw_sla, sla_takeaway,
              Widget("bar", "task_kind", ("breaches",))),
    ]),
]  # fmt: skip


def datasets() -> list[Dataset]:
    return list({p.dataset.id: p.dataset for page in PAGES for p in page.panels}.values())
