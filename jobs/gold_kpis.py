"""Build the gold reporting tables: daily_kpis, retention_cohorts, funnels, paths.

Entry point for spark-submit and Databricks (spark_python_task) of
`behavior_lake.jobs.gold_kpis`, where the job is declared and documented:

    python jobs/gold_kpis.py --help
"""

import sys

from behavior_lake.jobs.gold_kpis import cli

if __name__ == "__main__":
    sys.exit(cli())
