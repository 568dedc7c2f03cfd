"""The insights panels as a Databricks AI/BI (Lakeview) dashboard: the same datasets (SQL)
and pages as the static report, one chart widget per panel under a text widget with its
title and how to read it. Tables are named `<schema_prefix><layer>.<table>`; the bundle
sets the catalog (`dataset_catalog`). Incomplete periods become gaps (null), never zeros.
"""

from __future__ import annotations

from typing import Any

from behavior_lake.insights import panels as P

GRID = 6  # the dashboard grid is six columns wide
WIDGET_VERSION = {"line": 3, "bar": 3, "heatmap": 3, "table": 1}
SCALE = {"temporal": "temporal", "categorical": "categorical", "quantitative": "quantitative"}


def table_names(schema_prefix: str, tables: list[str] | tuple[str, ...]) -> dict[str, str]:
    return {t: f"{schema_prefix}{t.split('.')[0]}.{t.split('.')[1]}" for t in tables}


def _masked(panel: P.Panel) -> bool:
    """Lines over a dataset that flags incomplete periods draw those as gaps."""
    return panel.widget.kind == "line" and panel.dataset.complete_col is not None


def dataset_sql(panel: P.Panel, schema_prefix: str) -> tuple[str, str]:
    """(dataset name, SQL) of what the panel's widget reads."""
    ds = panel.dataset
    sql = ds.render_sql(table_names(schema_prefix, ds.tables))
    if not _masked(panel):
        return ds.id, sql
    w = panel.widget
    flag = ds.complete_col
    cols = ", ".join(f"CASE WHEN {flag} THEN {c} END AS {c}" for c in w.y)
    return f"{ds.id}__{panel.id}", f"SELECT {w.x}, {cols}\nFROM (\n{sql}\n) t"


def _query_lines(sql: str) -> list[str]:
    lines = sql.strip().splitlines()
    return [line + "\n" for line in lines[:-1]] + lines[-1:]


def _widget(panel: P.Panel, dataset: str) -> dict[str, Any]:
    w = panel.widget
    cols = [w.x, *w.y] + ([w.color] if w.color else [])
    fields = [{"name": c, "expression": f"`{c}`"} for c in dict.fromkeys(cols)]
    if w.kind == "heatmap":
        encodings: dict[str, Any] = {
            "x": {"fieldName": w.x, "scale": {"type": "categorical"}, "displayName": w.x},
            "y": {"fieldName": w.color, "scale": {"type": "categorical"}, "displayName": w.color},
            "color": {"fieldName": w.y[0], "scale": {"type": "quantitative"},
                      "displayName": w.y[0]},
        }  # fmt: skip
    else:
        encodings = {
            "x": {"fieldName": w.x, "scale": {"type": SCALE[w.x_type]}, "displayName": w.x}
        }
        if len(w.y) == 1:
            encodings["y"] = {"fieldName": w.y[0], "scale": {"type": "quantitative"},
                              "displayName": w.y[0]}  # fmt: skip
        else:
            encodings["y"] = {
                "scale": {"type": "quantitative"},
                "fields": [{"fieldName": c, "displayName": c} for c in w.y],
            }
        if w.color:
            encodings["color"] = {"fieldName": w.color, "scale": {"type": "categorical"},
                                  "displayName": w.color}  # fmt: skip
    return {
        "name": panel.id,
        "queries": [
            {"name": "main_query",
             "query": {"datasetName": dataset, "fields": fields, "disaggregated": True}}
        ],
        "spec": {
            "version": WIDGET_VERSION[w.kind],
            "widgetType": w.kind,
            "encodings": encodings,
            "frame": {"showTitle": True, "title": panel.title},
        },
    }  # fmt: skip


def dashboard(schema_prefix: str = "behavior_") -> dict[str, Any]:
    """The .lvdash.json document."""
    datasets: dict[str, str] = {}
    titles: dict[str, str] = {}
    pages = []
    for page in P.PAGES:
        layout, y = [], 0
        intro = {"name": f"{page.id}_intro", "multilineTextboxSpec": {
            "lines": [f"## {page.title}\n", page.intro]}}  # fmt: skip
        layout.append({"widget": intro, "position": {"x": 0, "y": y, "width": GRID, "height": 2}})
        y += 2
        for panel in page.panels:
            name, sql = dataset_sql(panel, schema_prefix)
            datasets[name] = sql
            titles[name] = panel.dataset.title
            if panel.note:
                text = {"name": f"{panel.id}_note", "multilineTextboxSpec": {"lines": [panel.note]}}
                layout.append(
                    {"widget": text, "position": {"x": 0, "y": y, "width": GRID, "height": 1}}
                )
                y += 1
            layout.append(
                {"widget": _widget(panel, name), "position": {"x": 0, "y": y, "width": GRID,
                                                               "height": 6}}
            )  # fmt: skip
            y += 6
        pages.append({"name": page.id, "displayName": page.title, "layout": layout})
    return {
        "datasets": [
            {"name": n, "displayName": titles[n], "queryLines": _query_lines(sql)}
            for n, sql in datasets.items()
        ],
        "pages": pages,
    }


def dashboard_problems(doc: dict[str, Any]) -> list[str]:
    """Structural checks of a dashboard document: unique names, widgets reading
    datasets that exist, encodings naming query fields, the six-column grid with no two
    widgets overlapping."""
    problems: list[str] = []
    names = [d["name"] for d in doc.get("datasets", [])]
    problems += [f"dataset {n} defined twice" for n in set(names) if names.count(n) > 1]
    for d in doc.get("datasets", []):
        if not d.get("queryLines") or not "".join(d["queryLines"]).strip():
            problems.append(f"dataset {d['name']}: empty query")
    widgets = []
    for page in doc.get("pages", []):
        if not page.get("name") or not page.get("displayName"):
            problems.append(f"page {page}: needs name and displayName")
        cells: set[tuple[int, int]] = set()
        for item in page.get("layout", []):
            w, pos = item.get("widget", {}), item.get("position", {})
            where = f"page {page.get('name')} widget {w.get('name')}"
            widgets.append(w.get("name"))
            if not {"x", "y", "width", "height"} <= set(pos):
                problems.append(f"{where}: position needs x, y, width, height")
                continue
            if pos["x"] < 0 or pos["x"] + pos["width"] > GRID:
                problems.append(f"{where}: outside the {GRID}-column grid")
            for cx in range(pos["x"], pos["x"] + pos["width"]):
                for cy in range(pos["y"], pos["y"] + pos["height"]):
                    if (cx, cy) in cells:
                        problems.append(f"{where}: overlaps another widget at ({cx}, {cy})")
                    cells.add((cx, cy))
            if "multilineTextboxSpec" in w:
                continue
            spec = w.get("spec", {})
            if spec.get("widgetType") not in WIDGET_VERSION:
                problems.append(f"{where}: unknown widgetType {spec.get('widgetType')}")
            elif spec.get("version") != WIDGET_VERSION[spec["widgetType"]]:
                problems.append(f"{where}: {spec['widgetType']} widgets are version "
                                f"{WIDGET_VERSION[spec['widgetType']]}")  # fmt: skip
            fields = set()
            for q in w.get("queries", []):
                if q["query"]["datasetName"] not in names:
                    problems.append(f"{where}: no dataset {q['query']['datasetName']}")
                fields |= {f["name"] for f in q["query"]["fields"]}
            for enc in spec.get("encodings", {}).values():
                used = [enc["fieldName"]] if "fieldName" in enc else [
                    f["fieldName"] for f in enc.get("fields", [])]  # fmt: skip
                problems += [f"{where}: encoding names {u}, not a query field"
                             for u in used if u not in fields]  # fmt: skip
    problems += [f"widget name {n} used twice" for n in set(widgets) if widgets.count(n) > 1]
    return problems
