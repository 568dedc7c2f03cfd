"""Enforce retention: delete rows older than each table's period, then vacuum.

Entry point for spark-submit and Databricks (spark_python_task) of
`behavior_lake.jobs.enforce_retention`, where the job is declared and documented:

    python jobs/enforce_retention.py --help
"""

import sys

from behavior_lake.jobs.enforce_retention import cli

if __name__ == "__main__":
    sys.exit(cli())
