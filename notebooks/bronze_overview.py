# Databricks notebook source
# MAGIC %md
# MAGIC # Bronze overview
# MAGIC Ingest batches (lines read = bronze + quarantined + sampled out), quarantine reasons
# MAGIC and schema drift. Runs on Databricks or locally (`python notebooks/bronze_overview.py`).

# COMMAND ----------

import os
import sys

sys.path.insert(0, os.path.join(os.getcwd(), "lib"))

from pyspark.sql import functions as F

from behavior_lake import review
from behavior_lake.contracts.bronze import BRONZE_QUARANTINE, INGEST_BATCHES, SCHEMA_DRIFT

lake = review.context().lake

# COMMAND ----------

batches = lake.read(INGEST_BATCHES.name).orderBy(F.col("started_at").desc())
batches.show(10, truncate=False)

# COMMAND ----------

(
    lake.read(BRONZE_QUARANTINE.name)
    .groupBy("reason")
    .count()
    .orderBy(F.col("count").desc())
    .show(truncate=False)
)

# COMMAND ----------

(
    lake.read(SCHEMA_DRIFT.name)
    .groupBy("drift_kind", "event", "property")
    .agg(F.sum("count").alias("rows"))
    .orderBy(F.col("rows").desc())
    .show(20, truncate=False)
)
