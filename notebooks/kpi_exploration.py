# Databricks notebook source
# MAGIC %md
# MAGIC # KPI exploration
# MAGIC Daily active persons, stickiness, conversion and revenue; weekly retention cohorts;
# MAGIC funnels. Runs on Databricks or locally (`python notebooks/kpi_exploration.py`).

# COMMAND ----------

import os
import sys

sys.path.insert(0, os.path.join(os.getcwd(), "lib"))

from behavior_lake import review

ctx = review.context()

# COMMAND ----------

kpis = review.kpis(ctx.lake)
print(kpis.tail(14).to_string(index=False))
fig = review.kpi_figure(kpis)

# COMMAND ----------

retention = review.retention_matrix(ctx.lake)
print(retention.round(2).to_string())

# COMMAND ----------

funnels = review.funnel_summary(ctx.lake)
print(funnels.to_string(index=False))
