# Databricks notebook source
# MAGIC %md
# MAGIC # Segment review
# MAGIC Sizes of the champion's segments, their profiles (centroid z-scores) and the share
# MAGIC drift since training. Runs on Databricks or locally.

# COMMAND ----------

import os
import sys

sys.path.insert(0, os.path.join(os.getcwd(), "lib"))

from behavior_lake import review

ctx = review.context()

# COMMAND ----------

sizes = review.segment_sizes(ctx.lake)
print(sizes.to_string(index=False))

# COMMAND ----------

profile = review.segment_profile(ctx.settings)
for p in profile:
    print(f"{p['segment_id']}: {p['segment_name']} ({p['share']:.1%} of persons)")
fig = review.profile_heatmap(profile)

# COMMAND ----------

drift = review.segment_drift(ctx.lake)
print(drift[["as_of_date", "model_version", "psi", "retrain_recommended"]].to_string(index=False))
