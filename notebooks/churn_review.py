# Databricks notebook source
# MAGIC %md
# MAGIC # Churn model review
# MAGIC Champion vs challenger on the holdout, calibration of every candidate, risk deciles
# MAGIC of the scores at `as_of` (empty = latest), shadow comparison and realized performance.

# COMMAND ----------

from behavior_lake import review  # the installed package (the wheel on Databricks)

env, as_of = review.parameters(globals())  # widgets on Databricks, environment locally
ctx = review.context(env)
show = review.shower(globals())  # display() on Databricks, inline in Jupyter, text in a shell

# COMMAND ----------

models = review.churn_models(ctx.settings)
show(models)

# COMMAND ----------

champion = models[models["alias"] == "champion"].iloc[0]
table = review.calibration(ctx.settings, champion["run_id"])
show(table)
fig = review.calibration_figure(table)
show(fig)

# COMMAND ----------

show(review.score_deciles(ctx.lake, as_of))

# COMMAND ----------

for name, frame in review.monitoring(ctx.lake).items():
    show(f"{name}: (empty)" if frame is None or frame.empty else name)
    if frame is not None and not frame.empty:
        show(frame)
