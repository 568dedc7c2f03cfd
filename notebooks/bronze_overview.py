# Databricks notebook source
# MAGIC %md
# MAGIC # Bronze overview
# MAGIC Ingest batches (lines read = bronze + quarantined + sampled out), quarantine reasons
# MAGIC and schema drift. Widgets: `env`. Locally: `python notebooks/bronze_overview.py`.

# COMMAND ----------

from behavior_lake import review  # the installed package (the wheel on Databricks)

env, as_of = review.parameters(globals())  # widgets on Databricks, environment locally
ctx = review.context(env)
show = review.shower(globals())  # display() on Databricks, inline in Jupyter, text in a shell

# COMMAND ----------

from pyspark.sql import functions as F  # noqa: E402

from behavior_lake.contracts.bronze import BRONZE_QUARANTINE, INGEST_BATCHES, SCHEMA_DRIFT  # noqa: E402

lake = ctx.lake
batches = lake.read(INGEST_BATCHES.name).orderBy(F.col("started_at").desc()).limit(10)
show(batches.toPandas())

# COMMAND ----------

reasons = lake.read(BRONZE_QUARANTINE.name).groupBy("reason").count().orderBy(F.col("count").desc())
show(reasons.toPandas())

# COMMAND ----------

drift = (
    lake.read(SCHEMA_DRIFT.name)
    .groupBy("drift_kind", "event", "property")
    .agg(F.sum("count").alias("rows"))
    .orderBy(F.col("rows").desc())
    .limit(20)
)
show(drift.toPandas())
