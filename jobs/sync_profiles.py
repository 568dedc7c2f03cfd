"""Sync segments and churn scores to the webhook (only persons that changed) and Redis.

Entry point for spark-submit and Databricks (spark_python_task) of
`behavior_lake.jobs.sync_profiles`, where the job is declared and documented:

    python jobs/sync_profiles.py --help
"""

import sys

from behavior_lake.jobs.sync_profiles import cli

if __name__ == "__main__":
    sys.exit(cli())
