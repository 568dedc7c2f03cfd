"""Build gold.user_features snapshots (+ feature_catalog, path_vocabulary, ops.feature_drift).

Entry point for spark-submit and Databricks (spark_python_task) of
`behavior_lake.jobs.gold_features`, where the job is declared and documented:

    python jobs/gold_features.py --help
"""

import sys

from behavior_lake.jobs.gold_features import cli

if __name__ == "__main__":
    sys.exit(cli())
