"""The insights report: every panel's query run over the lake, drawn as inline SVG, one
static HTML page per topic plus an overview (index.html). No script, no server, no
external resource: the folder can be opened from disk, copied or attached."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from behavior_lake.insights import panels as P
from behavior_lake.lake import Lake

log = logging.getLogger(__name__)

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#111827;background:#f9fafb}
header{background:#111827;color:#f9fafb;padding:14px 28px}header h1{margin:0;font-size:20px}
header p{margin:4px 0 0;color:#d1d5db;font-size:13px}
nav{background:#1f2937;padding:0 20px}nav a{color:#e5e7eb;text-decoration:none;display:inline-block;padding:10px 10px;font-size:14px}
nav a.here{background:#374151;color:#fff}
main{max-width:1000px;margin:0 auto;padding:18px 24px}
section{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:16px 20px;margin:16px 0}
section h2{margin:0 0 6px;font-size:17px}.takeaway{font-size:15px;margin:4px 0 12px;color:#1f2937}
.note{font-size:12px;color:#6b7280}.missing{color:#92400e;background:#fffbeb;padding:8px;border-radius:6px}
details{margin-top:10px;font-size:12px}table{border-collapse:collapse;margin:8px 0}
td,th{border:1px solid #e5e7eb;padding:3px 8px;text-align:right}th{background:#f3f4f6}
pre{background:#f3f4f6;padding:8px;overflow-x:auto}
.cards{display:flex;flex-wrap:wrap;gap:12px}.card{flex:1 1 200px;background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:12px 16px}
.card .v{font-size:24px;font-weight:600}.card .k{font-size:12px;color:#6b7280}
"""


@dataclass
class Result:
    """One dataset's rows, or why there are none."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    sources: dict[str, int] = field(default_factory=dict)  # table -> Delta version read


def view_name(table: str) -> str:
    return "insights_" + table.replace(".", "__")


def run_datasets(lake: Lake) -> dict[str, Result]:
    """Run every dataset over the lake (aggregates: small results). A dataset whose
    table does not exist yet, or whose query fails, gets the reason instead of rows."""
    spark = lake.spark
    out: dict[str, Result] = {}
    sets = P.datasets()
    tables = sorted({t for ds in sets for t in ds.tables})
    versions = {t: lake.version(t) for t in tables if lake.exists(t)}
    for t in versions:  # one view per table, whatever number of datasets read it
        lake.read(t).createOrReplaceTempView(view_name(t))
    for i, ds in enumerate(sets, start=1):
        t0 = time.monotonic()
        missing = [t for t in ds.tables if t not in versions]
        if missing:
            out[ds.id] = Result(error=f"{', '.join(missing)} does not exist yet")
            log.info("insights %d/%d %s: skipped (%s missing)", i, len(sets), ds.id, missing)
            continue
        sources = {t: versions[t] for t in ds.tables}
        quiet = logging.getLogger("SQLQueryContextLogger")  # we report the failure ourselves
        level, quiet.level = quiet.level, logging.CRITICAL
        try:
            sql = ds.render_sql({t: view_name(t) for t in ds.tables})
            rows = [r.asDict() for r in spark.sql(sql).collect()]
        except Exception as exc:  # a lake built by an older version, a removed feature
            first = str(exc).strip().splitlines()[0][:300]
            out[ds.id] = Result(error=f"query failed: {first}", sources=sources)
            log.warning("insights: dataset %s failed: %s", ds.id, first)
            continue
        finally:
            quiet.setLevel(level)
        out[ds.id] = Result(rows, None, sources)
        log.info("insights %d/%d %s: %d rows in %.1fs", i, len(sets), ds.id, len(rows),
                 time.monotonic() - t0)  # fmt: skip
    return out


def _table(rows: list[dict[str, Any]], limit: int) -> str:
    if not rows:
        return "<p>(no rows)</p>"
    cols = list(rows[0])
    shown = rows if len(rows) <= limit else rows[-limit:]
    head = "".join(f"<th>{escape(c)}</th>" for c in cols)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(_cell(r[c]))}</td>" for c in cols) + "</tr>" for r in shown
    )
    more = f"<p>Last {limit} of {len(rows)} rows.</p>" if len(rows) > limit else ""
    return f"{more}<table><tr>{head}</tr>{body}</table>"


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def render_panel(panel: P.Panel, res: Result, limit: int) -> tuple[str, str]:
    """(section html, takeaway)."""
    sql = panel.dataset.sql.strip()
    title = escape(panel.title)
    if res.error:
        take = f"Not available: {res.error}."
        return (
            f'<section id="{panel.id}"><h2>{title}</h2><p class="missing">{escape(take)}</p>'
            f"<details><summary>Query</summary><pre>{escape(sql)}</pre></details></section>",
            take,
        )
    take = panel.takeaway(res.rows) if res.rows else "No rows yet."
    chart = panel.draw(panel.id, panel.title, res.rows) if res.rows else ""
    src = ", ".join(f"{t} (version {v})" for t, v in res.sources.items())
    note = f'<p class="note">{escape(panel.note)}</p>' if panel.note else ""
    return (
        f'<section id="{panel.id}"><h2>{title}</h2><p class="takeaway">{escape(take)}</p>'
        f"<figure>{chart}</figure>{note}"
        f"<details><summary>Data behind the chart: {escape(src)}</summary>"
        f"{_table(res.rows, limit)}<pre>{escape(sql)}</pre></details></section>",
        take,
    )


def _page(title: str, here: str, header: str, body: str) -> str:
    links = [("index", "Overview")] + [(p.id, p.title) for p in P.PAGES]
    nav = "".join(
        f'<a href="{pid}.html"{" class=here" if pid == here else ""}>{escape(t)}</a>'
        for pid, t in links
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)} · behavior-lake insights</title><style>{CSS}</style></head>"
        f"<body><header><h1>behavior-lake insights: {escape(title)}</h1><p>{header}</p></header>"
        f"<nav>{nav}</nav><main>{body}</main></body></html>"
    )


def _cards(results: dict[str, Result]) -> str:
    cards = []
    kpis = [r for r in results.get("daily_kpis", Result()).rows if r.get("is_complete")]
    if kpis:
        last = kpis[-1]
        cards += [
            (P._num(last["dau"]), f"active persons on {last['kpi_date']}"),
            (P._num(last["mau"]), "active in the 30 days to then"),
            (P._num(sum(r["revenue"] or 0 for r in kpis[-30:])), "revenue, last 30 complete days"),
        ]
    churn = results.get("churn_deciles", Result()).rows
    if churn:
        cards.append((P._num(sum(r["in_capacity"] for r in churn)), "at-risk persons to contact"))
    q = results.get("quarantine", Result()).rows
    if q and q[0]["lines_read"]:
        cards.append((P._pct(sum(r["lines"] for r in q) / q[0]["lines_read"]), "lines quarantined"))
    return "".join(
        f'<div class="card"><div class="v">{escape(v)}</div><div class="k">{escape(k)}</div></div>'
        for v, k in cards
    )


def build_site(lake: Lake, out_dir: str | Path, limit: int = 60) -> dict[str, Any]:
    """Write index.html and one page per topic into `out_dir`; returns a summary
    (pages, panels drawn, panels without data)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = run_datasets(lake)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = escape(f"Generated {stamp} from the lake at {lake.root}")
    overview, drawn, missing = [], 0, []
    for page in P.PAGES:
        sections, takes = [], []
        for panel in page.panels:
            html, take = render_panel(panel, results[panel.dataset.id], limit)
            sections.append(html)
            takes.append((panel, take))
            if results[panel.dataset.id].error or not results[panel.dataset.id].rows:
                missing.append(panel.id)
            else:
                drawn += 1
        intro = f'<p class="takeaway">{escape(page.intro)}</p>'
        (out / f"{page.id}.html").write_text(
            _page(page.title, page.id, header, intro + "".join(sections))
        )
        items = "".join(
            f'<li><a href="{page.id}.html#{p.id}">{escape(p.title)}</a>: {escape(t)}</li>'
            for p, t in takes
        )
        overview.append(f"<section><h2>{escape(page.title)}</h2><ul>{items}</ul></section>")
    body = f'<div class="cards">{_cards(results)}</div>' + "".join(overview)
    (out / "index.html").write_text(_page("Overview", "index", header, body))
    pages = ["index.html", *[f"{p.id}.html" for p in P.PAGES]]
    log.info("insights: %d pages, %d charts drawn, %d panels without data (%s) in %s",
             len(pages), drawn, len(missing), ", ".join(missing) or "none", out)  # fmt: skip
    return {"pages": pages, "charts": drawn, "without_data": missing, "out": str(out)}
