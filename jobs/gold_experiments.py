"""Analyse A/B tests and campaign holdouts: exposures, lift, SRM alerts.

Entry point for spark-submit and Databricks (spark_python_task) of
`behavior_lake.jobs.gold_experiments`, where the job is declared and documented:

    python jobs/gold_experiments.py --help
"""

import sys

from behavior_lake.jobs.gold_experiments import cli

if __name__ == "__main__":
    sys.exit(cli())
