from __future__ import annotations

import json

from chispa import assert_df_equality
from pyspark.sql import SparkSession

from behavior_lake.bronze.drift import detect_drift
from behavior_lake.bronze.parse import properties_variant, with_envelope
from behavior_lake.contracts.taxonomy import load_taxonomy
from tests.conftest import CONF


def line(event: str, props: dict, mtype: str = "track") -> str:
    m = {
        "messageId": "m",
        "type": mtype,
        "anonymousId": "a",
        "timestamp": "2026-01-05T00:00:00Z",
        "properties": props,
    }
    if mtype == "track":
        m["event"] = event
    return json.dumps(m)


def _lines() -> list[str]:
    return [
        line("Product Viewed", {"product_id": "p", "price": 3}),  # integer ok for number
        line("Product Viewed", {"product_id": "p", "price": 3.5}),  # ok
        line("Product Viewed", {"product_id": "p", "price": "3.50"}),  # type_mismatch
        line("Product Viewed", {"product_id": "p", "price": None}),  # null is not drift
        line("Product Viewed", {"product_id": "p", "color": "red"}),  # new_property
        line("Product Viewed", {"product_id": "p", "color": "blue"}),  # new_property
        line("Wishlist Shared", {"x": 1}),  # unknown_event
        line("", {"path": "/", "utm": "x"}, mtype="page"),  # new_property on page
    ]


def _expected(spark: SparkSession):
    return spark.createDataFrame(
        [
            ("track", "Wishlist Shared", None, "unknown_event", None, None, 1),
            ("track", "Product Viewed", "price", "type_mismatch", "number", "string", 1),
            ("track", "Product Viewed", "color", "new_property", None, "string", 2),
            ("page", "Page Viewed", "utm", "new_property", None, "string", 1),
        ],
        "event_type string, event string, property string, drift_kind string, "
        "expected_type string, observed_type string, count long",
    )


def test_drift_kinds(spark: SparkSession) -> None:
    taxonomy = load_taxonomy(CONF)
    df = spark.createDataFrame([(x,) for x in _lines()], "raw_line string").transform(with_envelope)
    expected = _expected(spark)
    got = detect_drift(df, taxonomy).select(*expected.columns)
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_drift_from_the_cached_properties_alone(spark: SparkSession) -> None:
    """Bronze ingest caches only the properties VARIANT (`_props`), not the parsed line."""
    taxonomy = load_taxonomy(CONF)
    parsed = spark.createDataFrame([(x,) for x in _lines()], "raw_line string").transform(
        with_envelope
    )
    narrow = parsed.select("event_type", "event", properties_variant())
    assert "_v" not in narrow.columns
    expected = _expected(spark)
    got = detect_drift(narrow, taxonomy).select(*expected.columns)
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_taxonomy_loads_and_names_events() -> None:
    t = load_taxonomy(CONF)
    assert t.get("Order Completed").required["revenue"] == "number"
    assert t.get("Order Completed").snake_name == "order_completed"
    assert t.get("Page Viewed").event_type == "page"


def test_taxonomy_rejects_unknown_keys(tmp_path) -> None:
    import pytest

    from behavior_lake.config import ConfigError

    (tmp_path / "base" / "taxonomy").mkdir(parents=True)
    (tmp_path / "base" / "taxonomy" / "x.yml").write_text(
        "family: x\nevents:\n  Thing Done:\n    category: c\n    requird: {}\n"
    )
    with pytest.raises(ConfigError, match=r"x\.yml: events\.Thing Done: unknown key"):
        load_taxonomy(tmp_path)
