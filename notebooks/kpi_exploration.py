# Databricks notebook source
# MAGIC %md
# MAGIC # KPI exploration
# MAGIC Daily active persons, stickiness, conversion and revenue (days not over shaded);
# MAGIC weekly retention cohorts (weeks not over left empty); funnels over closed windows.
# MAGIC Widgets: `env`, `as_of` (empty = latest). Locally: `python notebooks/kpi_exploration.py`.

# COMMAND ----------

from behavior_lake import review  # the installed package (the wheel on Databricks)

env, as_of = review.parameters(globals())  # widgets on Databricks, environment locally
ctx = review.context(env)
show = review.shower(globals())  # display() on Databricks, inline in Jupyter, text in a shell

# COMMAND ----------

kpis = review.kpis(ctx.lake, as_of=as_of)
show(kpis.tail(14))
fig = review.kpi_figure(kpis)
show(fig)

# COMMAND ----------

retention = review.retention_matrix(ctx.lake)
show(retention.round(2))

# COMMAND ----------

funnels = review.funnel_summary(ctx.lake)
show(funnels)
