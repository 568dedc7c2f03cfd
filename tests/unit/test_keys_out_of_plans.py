"""No privacy key, nor the HMAC's padded keys, appears in a query plan or the session's
configuration; the pseudonyms and ciphertexts are still those of the keys."""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from behavior_lake.bronze.parse import with_pii_protected
from behavior_lake.privacy.pseudonym import _pads, user_person_id

PK = "7f3a9c1e5b8d2f4a6c0e9b7d3f1a5c8e"
EK = "9e4b7c2a1f6d8e3b5a0c7f9d2e4b6a8c1d3f5e7a9b0c2d4e6f8a1b3c5d7e9f0a"
MODES = ("simple", "extended", "formatted", "cost", "codegen")


def _frames(spark: SparkSession) -> tuple[DataFrame, DataFrame]:
    df = spark.createDataFrame(
        [("u1", '{"context": {"ip": "1.2.3.4"}}')], "u string, raw_line string"
    ).withColumn("_v", F.parse_json("raw_line"))
    return (
        df.select(user_person_id(F.col("u"), PK).alias("p")),
        with_pii_protected(df, ["context.ip"], "encrypt", EK).select("pii"),
    )


def _plan_text(spark: SparkSession, frames: tuple[DataFrame, ...]) -> str:
    """Every printed form of the frames' plans, after they ran (subquery results set)."""
    mode = spark._jvm.org.apache.spark.sql.execution.ExplainMode.fromString  # type: ignore[union-attr]
    text = []
    for f in frames:
        f.collect()
        qe = f._jdf.queryExecution()
        text += [qe.explainString(mode(m)) for m in MODES]
        text += [qe.analyzed().toString(), qe.optimizedPlan().toString()]
        text.append(qe.executedPlan().toString())
    return "\n".join(text).lower()


def _secrets() -> list[str]:
    return [PK.lower(), EK.lower(), *(p.hex() for p in _pads(PK)), PK.encode().hex()]


def _session_conf(spark: SparkSession) -> str:
    pairs = spark.sparkContext.getConf().getAll() + list(spark.conf.getAll.items())
    return "\n".join(f"{k}={v}" for k, v in pairs).lower()


def test_no_key_material_in_any_plan_or_the_configuration(spark: SparkSession) -> None:
    text = _plan_text(spark, _frames(spark))
    assert "scalar-subquery" in text  # the keys are there, as subqueries
    assert not [s for s in _secrets() if s in text]
    assert not [s for s in _secrets() if s in _session_conf(spark)]


def test_the_plan_check_sees_a_key_written_as_a_literal(spark: SparkSession) -> None:
    # positive control: the same HMAC with the padded key as a literal shows in the text
    ipad, _ = _pads(PK)
    leaky: Column = F.sha2(F.concat(F.lit(ipad), F.encode(F.col("u"), "UTF-8")), 256)
    frame = spark.createDataFrame([("u1",)], "u string").select(leaky)
    assert ipad.hex() in _plan_text(spark, (frame,))


def test_pseudonyms_and_ciphertexts_are_those_of_the_keys(spark: SparkSession) -> None:
    persons, pii = _frames(spark)
    expected = hmac.new(PK.encode(), b"user:u1", hashlib.sha256).hexdigest()[:32]
    assert persons.first()["p"] == expected
    blob = base64.b64decode(pii.first()["pii"]["context.ip"])
    plain = AESGCM(bytes.fromhex(EK)).decrypt(blob[:12], blob[12:], None)
    assert plain == b"1.2.3.4"


def test_sessions_hide_settings_named_like_the_keys(spark: SparkSession) -> None:
    regex = spark.sparkContext.getConf().get("spark.redaction.regex")
    assert "pseudonym" in regex and "encryption" in regex
