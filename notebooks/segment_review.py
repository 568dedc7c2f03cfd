# Databricks notebook source
# MAGIC %md
# MAGIC # Segment review
# MAGIC Sizes of the champion's segments, their profiles (centroid z-scores) and the share
# MAGIC drift since training. Widgets: `env`, `as_of` (empty = latest snapshot).

# COMMAND ----------

from behavior_lake import review  # the installed package (the wheel on Databricks)

env, as_of = review.parameters(globals())  # widgets on Databricks, environment locally
ctx = review.context(env)
show = review.shower(globals())  # display() on Databricks, inline in Jupyter, text in a shell

# COMMAND ----------

sizes = review.segment_sizes(ctx.lake, as_of)
show(sizes)

# COMMAND ----------

profile = review.segment_profile(ctx.settings)
show(
    "\n".join(
        f"{p['segment_id']}: {p['segment_name']} ({p['share']:.1%} of persons)" for p in profile
    )
)
fig = review.profile_heatmap(profile)
show(fig)

# COMMAND ----------

drift = review.segment_drift(ctx.lake)
show(drift[["as_of_date", "model_version", "psi", "retrain_recommended"]])
