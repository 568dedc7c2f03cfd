"""Kafka records become the same line rows as landing files (chispa)."""

from __future__ import annotations

from datetime import datetime

from chispa import assert_df_equality
from pyspark.sql import SparkSession

from behavior_lake.activation.stream import kafka_lines


def test_kafka_records_become_landing_lines(spark: SparkSession) -> None:
    ts = datetime(2026, 1, 5, 13, 7)
    records = spark.createDataFrame(
        [
            (b"2026-01-04/09/events-1.jsonl.gz", b'{"a":1}\r', "t", 0, ts),  # a forwarded file
            (b"user-42", b"\xef\xbb\xbf{}", "t", 3, ts),  # keyed by user: Kafka's hour
            (None, b"x", "t", 1, ts),
        ],
        "key binary, value binary, topic string, partition int, timestamp timestamp",
    )
    got = kafka_lines(records)
    expected = spark.createDataFrame(
        [
            ('{"a":1}', "2026-01-04/09/events-1.jsonl.gz", 9, ts),
            ("{}", "2026-01-05/13/kafka-t-3", 6, ts),
            ("x", "2026-01-05/13/kafka-t-1", 2, ts),
        ],
        "raw_line string, source_file string, _line_bytes int, landed_at timestamp",
    )
    assert_df_equality(got, expected, ignore_nullable=True)
