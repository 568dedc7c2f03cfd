"""Experiment analysis: the statistics (fixed-horizon and always-valid tests, CUPED,
sample-ratio mismatch, multiple testing) and the sample-size planner. Pure functions
over per-variant aggregates (counts, sums, sums of squares): the lake computes the
aggregates with Spark, nothing here touches rows."""
