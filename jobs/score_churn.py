"""Score eligible persons with the champion churn model into gold.churn_scores.

Entry point for spark-submit and Databricks (spark_python_task) of
`behavior_lake.jobs.score_churn`, where the job is declared and documented:

    python jobs/score_churn.py --help
"""

import sys

from behavior_lake.jobs.score_churn import cli

if __name__ == "__main__":
    sys.exit(cli())
