"""Deliver fired decisions to the webhook (signed, idempotent, retried, dead-lettered).

Entry point for spark-submit and Databricks (spark_python_task) of
`behavior_lake.jobs.deliver_actions`, where the job is declared and documented:

    python jobs/deliver_actions.py --help
"""

import sys

from behavior_lake.jobs.deliver_actions import cli

if __name__ == "__main__":
    sys.exit(cli())
