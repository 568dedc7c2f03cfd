"""No privacy key, nor the HMAC's padded keys, appears in a query plan."""

from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from behavior_lake.bronze.parse import with_pii_protected
from behavior_lake.privacy.pseudonym import user_person_id
from behavior_lake.privacy_keys import _hmac_pads, redaction_regex
from behavior_lake.spark import session_conf
from tests.conftest import CONF, lake_test_settings

PK = "7f3a9c1e5b8d2f4a6c0e9b7d3f1a5c8e"
EK = "9e4b7c2a1f6d8e3b5a0c7f9d2e4b6a8c1d3f5e7a9b0c2d4e6f8a1b3c5d7e9f0a"


def _plans(spark: SparkSession) -> str:
    df = spark.createDataFrame(
        [("u1", '{"context": {"ip": "1.2.3.4"}}')], "u string, raw_line string"
    )
    df = df.withColumn("_v", F.parse_json("raw_line"))
    frames = [
        df.select(user_person_id(F.col("u"), PK).alias("p")),
        with_pii_protected(df, ["context.ip"], "encrypt", EK).select("pii"),
    ]
    text = []
    for f in frames:
        qe = f._jdf.queryExecution()
        for mode in ("simple", "extended", "formatted", "cost"):
            text.append(
                qe.explainString(
                    spark._jvm.org.apache.spark.sql.execution.ExplainMode.fromString(mode)
                )
            )
    return "\n".join(text).lower()


def secrets() -> list[str]:
    return [PK.lower(), EK.lower(), *(p.hex() for p in _hmac_pads(PK)), PK.encode().hex()]


def test_no_key_material_in_any_explain_mode(spark: SparkSession, tmp_path) -> None:
    s = lake_test_settings(tmp_path, f"privacy.pseudonym_key={PK}", f"privacy.encryption_key={EK}")
    with session_conf(spark, {"spark.sql.redaction.string.regex": redaction_regex(s)}):
        redacted = _plans(spark)
    assert "redacted" in redacted
    assert not [x for x in secrets() if x in redacted]
    # positive control: without the redaction the padded key is in the plan
    with session_conf(spark, {"spark.sql.redaction.string.regex": "(?i)will-not-match-anything"}):
        plain = _plans(spark)
    assert _hmac_pads(PK)[0].hex() in plain and EK in plain


def test_sessions_are_built_with_the_redaction(spark: SparkSession) -> None:
    conf = spark.conf.get("spark.sql.redaction.string.regex")
    assert (
        conf.startswith("(?i)(")
        and _hmac_pads(lake_test_settings("x").privacy.pseudonym_key)[0].hex() in conf
    )
    assert CONF.is_dir()
