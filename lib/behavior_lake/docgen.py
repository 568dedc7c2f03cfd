"""Generated documentation: the README's jobs, tables and config blocks, docs/tables.md
and docs/config.md, from the job registry, the catalog and the settings classes, so
names, keys and defaults live in one place.

    python -m behavior_lake.docgen            (make docs)  rewrite them
    python -m behavior_lake.docgen --check    exit 1 when a generated part is stale
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import json
import os
import re
import sys
import textwrap
import types
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from behavior_lake import config
from behavior_lake.catalog import subject_tables
from behavior_lake.contracts.gold import USER_FEATURES, features_table
from behavior_lake.contracts.silver import silver_events_spec
from behavior_lake.contracts.tables import TABLES
from behavior_lake.contracts.taxonomy import load_taxonomy
from behavior_lake.jobs import registry
from behavior_lake.lake.base import TableSpec

ROOT = Path(__file__).resolve().parents[2]
BEGIN = "<!-- generated:{name} (python -m behavior_lake.docgen) -->"
END = "<!-- end generated:{name} -->"
ENVS = ("local", "cluster", "databricks")


# ----------------------------------------------------------------------------- tables


def catalog_specs(conf_dir: Path) -> dict[str, TableSpec]:
    """Every spec, without a Spark session: gold.user_features with its fixed columns
    only (its feature columns are listed in gold.feature_catalog)."""
    specs = dict(TABLES)
    events = silver_events_spec(load_taxonomy(conf_dir))
    features = features_table([])
    specs[events.name] = events
    specs[features.name] = features
    return dict(sorted(specs.items(), key=lambda kv: (_layer_order(kv[0]), kv[0])))


def _layer_order(name: str) -> int:
    return ["bronze", "silver", "gold", "activation", "ops"].index(name.split(".")[0])


def _code(names: tuple[str, ...] | list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def tables_block(specs: Mapping[str, TableSpec]) -> str:
    """The README's table list: name and grain (keys, partitioning, columns and ranges
    are in docs/tables.md)."""
    rows = ["| table | one row per |", "|---|---|"]
    for name, s in specs.items():
        grain = s.grain.removeprefix("one row per ").split(" (")[0].split(":")[0]
        rows.append(f"| `{name}` | {grain} |")
    return "\n".join(rows)


def tables_doc(specs: Mapping[str, TableSpec]) -> str:
    subjects = set(subject_tables())
    out = [
        "# Tables",
        "",
        "Generated from the catalog (`behavior_lake.catalog`, specs in",
        "`behavior_lake/contracts/`) by `make docs`; do not edit. Every table's key is",
        "tested unique and not null, its code columns within their accepted values and its",
        "numbers within their valid ranges and invariants, over the demo lake",
        "(`tests/integration/test_table_keys.py`).",
        "",
    ]
    for name, s in specs.items():
        out += [f"## `{name}`", "", f"One row per {s.grain.removeprefix('one row per ')}."]
        facts = [f"key: {_code(s.key)}" if s.key else f"no key: {s.unkeyed}"]
        if s.partition_by:
            facts.append(f"partitioned by {_code(s.partition_by)}")
        if s.cluster_by:
            facts.append(f"files clustered by `{s.cluster_by}`")
        if name in subjects:
            facts.append("holds rows about persons (erasure, subject access)")
        if s.invariants:
            facts.append("every row: " + ", ".join(f"`{c}`" for c in s.invariants))
        out += [
            "",
            "; ".join(facts) + ".",
            "",
            "| column | type | null | accepted values / range |",
        ]
        out.append("|---|---|---|---|")
        for f in s.schema.fields:
            accepted = _code(list(s.accepted[f.name])) if f.name in s.accepted else ""
            if f.name in s.ranges:
                lo, hi = s.ranges[f.name]
                accepted = f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
            null = "yes" if f.nullable else "no"
            out.append(f"| `{f.name}` | `{_type(f.dataType)}` | {null} | {accepted} |")
        if name == USER_FEATURES:
            out.append("| *one column per feature* | see `gold.feature_catalog` | yes | |")
        out.append("")
    return "\n".join(out)


def _type(dt: Any) -> str:
    s = dt.simpleString()
    return s if len(s) <= 60 else s[:57] + "..."


# ----------------------------------------------------------------------------- jobs


def jobs_block() -> str:
    rows = ["| job | what it does | reads | writes |", "|---|---|---|---|"]
    subjects = set(subject_tables())
    for name, job in registry().items():
        reads = ", ".join(job.inputs) or "-"
        if set(job.inputs) == subjects:
            reads = "every table about persons"
        elif len(job.inputs) > 4:  # write modes and every input: docs/jobs.md
            layers = sorted({t.split(".")[0] for t in job.inputs if "." in t})
            reads = f"{len(job.inputs)} {'/'.join(layers)} tables"
        outs = job.outputs
        writes = ", ".join(o.table for o in outs if o.table != "*")
        if job.settings_outputs:
            writes += (", " if writes else "") + "deletes per `retention.tables`"
        if any(o.table == "*" for o in outs):
            writes = "deletes from every table holding the subject; " + ", ".join(
                o.table for o in outs if o.table != "*" and "delete" not in o.modes
            )
        rows.append(f"| `{name}` | {job.description.rstrip('.')} | {reads} | {writes or '-'} |")
    return "\n".join(rows)


# ----------------------------------------------------------------------------- config


@dataclasses.dataclass
class Key:
    key: str
    type: str
    default: str
    conf: str
    meaning: str


def field_comments(cls: type) -> dict[str, str]:
    """The comments above and beside each field of a dataclass, from its source."""
    src = textwrap.dedent(inspect.getsource(cls))
    lines = src.splitlines()
    out: dict[str, str] = {}
    for node in ast.parse(src).body[0].body:  # type: ignore[attr-defined]
        if not isinstance(node, ast.AnnAssign) or not isinstance(node.target, ast.Name):
            continue
        above = []
        i = node.lineno - 2
        while i >= 0 and lines[i].strip().startswith("#"):
            above.insert(0, lines[i].strip().lstrip("#").strip())
            i -= 1
        end = lines[node.end_lineno - 1]
        inline = end.split("  # ", 1)[1].strip() if "  # " in end else ""
        text = " ".join([*above, inline]).strip()
        out[node.target.id] = re.sub(r"\s+", " ", text)
    return out


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return " \\| ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args).replace("NoneType", "null")
    if origin in (list, dict):
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in args)}]"
    return getattr(tp, "__name__", str(tp))


def _show(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
    text = text.removesuffix("...").strip()
    return text if len(text) <= 80 else text[:77] + "..."


def conf_values(conf_dir: Path, leaves: set[str]) -> dict[str, dict[str, Any]]:
    """Values set in conf/base and each conf/<env> (raw, `${ENV:...}` unresolved), by
    dotted key; `leaves` are the keys whose value is one setting (maps included)."""
    out: dict[str, dict[str, Any]] = {}
    for where in ("base", *ENVS):
        data: dict[str, Any] = {}
        for path in sorted((conf_dir / where).glob("*.yml")):
            config._deep_merge(data, yaml.safe_load(path.read_text()) or {})
        out[where] = dict(_flatten(data, "", leaves))
    return out


def _flatten(data: Mapping[str, Any], prefix: str, leaves: set[str]) -> Iterator[tuple[str, Any]]:
    for k, v in data.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and key not in leaves:
            yield from _flatten(v, key + ".", leaves)
        else:
            yield key, v


def settings_keys(cls: type = config.Settings, prefix: str = "") -> Iterator[Key]:
    hints = typing.get_type_hints(cls)
    comments = field_comments(cls)
    for f in dataclasses.fields(cls):
        if f.name in ("env", "conf_dir"):
            continue
        key, tp = f"{prefix}{f.name}", hints[f.name]
        if dataclasses.is_dataclass(tp):
            yield from settings_keys(tp, key + ".")
            continue
        if f.default is not dataclasses.MISSING:
            default = _show(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = _show(f.default_factory())
        else:
            default = "(required)"
        yield Key(key, _type_name(tp), default, "", comments.get(f.name, ""))


def config_doc(conf_dir: Path) -> str:
    keys = list(settings_keys())
    values = conf_values(conf_dir, {k.key for k in keys})
    out = [
        "# Configuration reference",
        "",
        "Generated from the settings classes (`behavior_lake/config.py`: types, defaults and",
        "the comments beside each field) and the values `conf/` sets, by `make docs`; do not",
        "edit. Loading: `conf/base/*.yml`, then `conf/<env>/*.yml`, then `--conf key=value`",
        "(YAML values). Unknown keys, wrong types, missing required values and values out of",
        "range fail at start-up naming the dotted key. `${ENV:NAME}` / `${ENV:NAME:-default}`",
        "read environment variables.",
        "",
    ]
    section = ""
    for k in keys:
        top = k.key.split(".")[0]
        if top != section:
            section = top
            out += ["", f"## `{top}`", "", "| key | type | default | set in conf | meaning |"]
            out.append("|---|---|---|---|---|")
        sets = [
            f"{where}: `{_show(vals[k.key])}`"
            for where, vals in values.items()
            if k.key in vals and _show(vals[k.key]) != k.default
        ]
        meaning = k.meaning.replace("|", "\\|")
        type_ = k.type.replace("|", "\\|") if "\\|" not in k.type else k.type
        out.append(f"| `{k.key}` | {type_} | `{k.default}` | {'; '.join(sets)} | {meaning} |")
    return "\n".join(out) + "\n"


def config_block() -> str:
    sections: dict[str, list[str]] = {}
    for k in settings_keys():
        top, _, rest = k.key.partition(".")
        sections.setdefault(top, []).append(rest)
    return ", ".join(
        f"[`{top}`](docs/config.md#{top}) ({len(names)})" for top, names in sections.items()
    )


# ----------------------------------------------------------------------------- files


def blocks(conf_dir: Path) -> dict[str, str]:
    return {
        "jobs": jobs_block(),
        "tables": tables_block(catalog_specs(conf_dir)),
        "config": config_block(),
    }


def with_blocks(text: str, generated: Mapping[str, str]) -> str:
    for name, body in generated.items():
        begin, end = BEGIN.format(name=name), END.format(name=name)
        pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
        if not pattern.search(text):
            raise ValueError(f"README.md has no generated block {name!r} ({begin} ... {end})")
        text = pattern.sub(lambda _m, b=begin, body=body, e=end: f"{b}\n{body}\n{e}", text)
    return text


def help_json() -> str:
    """Every entry point's --help text (behavior_lake.entry prints it without pyspark)."""
    from behavior_lake.jobs.run_pipeline import parser as pipeline_parser

    texts = {}
    for name, job in registry().items():
        texts[name] = _help(job.parser())
    texts["run_pipeline"] = _help(pipeline_parser())
    return json.dumps(texts, indent=1, sort_keys=True) + "\n"


def _help(parser: argparse.ArgumentParser) -> str:
    before = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: fix the width
    try:
        return parser.format_help()
    finally:
        if before is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = before


def outputs(root: Path = ROOT) -> dict[Path, str]:
    conf_dir = root / "conf"
    readme = root / "README.md"
    return {
        readme: with_blocks(readme.read_text(), blocks(conf_dir)),
        root / "docs" / "tables.md": tables_doc(catalog_specs(conf_dir)),
        root / "docs" / "config.md": config_doc(conf_dir),
        root / "lib" / "behavior_lake" / "entry_help.json": help_json(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="docgen", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 when anything is stale")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        current = path.read_text() if path.exists() else ""
        if current != text:
            stale.append(path)
            if not args.check:
                path.write_text(text)
    if args.check and stale:
        names = ", ".join(str(p.relative_to(ROOT)) for p in stale)
        print(f"docgen: stale: {names} (run `make docs`)", file=sys.stderr)
        return 1
    print(f"docgen: {'checked' if args.check else 'wrote'} {len(outputs())} file(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
