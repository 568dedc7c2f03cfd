"""The catalog: every table is a registered spec with a key, and code names tables only
through it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import types as T

from behavior_lake.catalog import FACTORIES, resolve, table_names
from behavior_lake.contracts.checks import key_problems
from behavior_lake.contracts.tables import TABLES
from behavior_lake.lake import make_lake
from behavior_lake.lake.base import TableSpec
from tests.conftest import lake_test_settings

ROOT = Path(__file__).resolve().parents[2]
CATALOG_DIRS = (ROOT / "lib" / "behavior_lake" / "contracts",)


def table_literals(source: str, names: frozenset[str]) -> list[tuple[int, str]]:
    """(line, name) of every string constant that is exactly a table name."""
    return sorted(
        (node.lineno, node.value)
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names
    )


def code_files() -> list[Path]:
    files = sorted((ROOT / "lib" / "behavior_lake").rglob("*.py"))
    files += sorted((ROOT / "jobs").rglob("*.py")) + sorted((ROOT / "notebooks").rglob("*.py"))
    return [p for p in files if not any(p.is_relative_to(d) for d in CATALOG_DIRS)]


def test_no_table_name_literal_outside_the_catalog() -> None:
    names = table_names()
    found = {
        f"{p.relative_to(ROOT)}:{line}": name
        for p in code_files()
        for line, name in table_literals(p.read_text(), names)
    }
    assert not found, f"name tables through behavior_lake.contracts: {found}"


def test_the_literal_check_finds_a_literal() -> None:
    # positive control for the test above
    src = 'x = lake.read("silver.events")\ny = f"silver.events is {n}"\n"""silver.events"""\n'
    assert table_literals(src, table_names()) == [(1, "silver.events"), (3, "silver.events")]
    assert len(code_files()) > 40


def test_every_spec_declares_its_key_or_why_it_has_none(
    spark: SparkSession, tmp_path: Path
) -> None:
    specs = resolve(lake_test_settings(tmp_path / "lake"))
    assert set(specs) == table_names() == set(TABLES) | set(FACTORIES)
    for spec in specs.values():
        assert spec.key or spec.unkeyed, spec.name
        assert spec.grain.startswith(("one row per", "kind=")), spec.name
        if spec.key:
            non_null = [c for c in spec.key if not spec.schema[c].nullable]
            assert non_null, f"{spec.name}: at least one key column is never null"
        if spec.partition_by and "person_id" in spec.schema.fieldNames():
            assert spec.cluster_by == "person_id", spec.name
    with pytest.raises(ValueError, match="either key columns or why"):
        TableSpec("ops.x", T.StructType([T.StructField("a", T.StringType())]))
    with pytest.raises(ValueError, match=r"key column\(s\) \['b'\] not in schema"):
        TableSpec("ops.x", T.StructType([T.StructField("a", T.StringType())]), key=("b",))


def test_lake_specs_are_read_only(spark: SparkSession, tmp_path: Path) -> None:
    s = lake_test_settings(tmp_path / "lake")
    lake = make_lake(spark, s.lake.root, "delta-rs", resolve(s))
    with pytest.raises(TypeError):
        lake.specs["silver.events"] = TABLES["silver.sessions"]  # type: ignore[index]
    assert lake.declared("silver.events").key == ("message_id",)


def test_key_problems_finds_nulls_duplicates_and_unknown_codes(spark: SparkSession) -> None:
    spec = TableSpec(
        "ops.x",
        T.StructType(
            [
                T.StructField("id", T.StringType(), False),
                T.StructField("part", T.StringType(), True),
                T.StructField("status", T.StringType(), True),
            ]
        ),
        key=("id", "part"),
        accepted={"status": ("ok", "failed")},
    )
    schema = T.StructType([T.StructField(f.name, f.dataType, True) for f in spec.schema.fields])
    good = spark.createDataFrame(
        [("a", None, "ok"), ("a", "x", "failed"), ("b", None, None)], schema
    )
    assert key_problems(good, spec) == []
    bad = spark.createDataFrame([("a", None, "ok"), ("a", None, "ok"), (None, "y", "done")], schema)
    problems = key_problems(bad, spec)
    assert len(problems) == 3, problems
    assert "key column id has null values" in problems[0]
    assert "is not unique" in problems[1] and "x2" in problems[1]
    assert "['done']" in problems[2]
