# Databricks notebook source
# MAGIC %md
# MAGIC # Churn model review
# MAGIC Champion vs challenger on the holdout, calibration, risk deciles of the latest
# MAGIC scores, shadow comparison and realized performance. Runs on Databricks or locally.

# COMMAND ----------

import os
import sys

sys.path.insert(0, os.path.join(os.getcwd(), "lib"))

from behavior_lake import review

ctx = review.context()

# COMMAND ----------

models = review.churn_models(ctx.settings)
print(models.to_string(index=False))

# COMMAND ----------

champion = models[models["alias"] == "champion"].iloc[0]
table = review.calibration(ctx.settings, champion["run_id"])
print(table.to_string(index=False))
fig = review.calibration_figure(table)

# COMMAND ----------

print(review.score_deciles(ctx.lake).to_string(index=False))

# COMMAND ----------

for name, frame in review.monitoring(ctx.lake).items():
    print(name)
    print("  (empty)" if frame is None or frame.empty else frame.to_string(index=False))
