"""Train churn models on time-ordered cutoffs, track them in MLflow, gate champion/challenger.

Entry point for spark-submit and Databricks (spark_python_task) of
`behavior_lake.jobs.train_churn`, where the job is declared and documented:

    python jobs/train_churn.py --help
"""

import sys

from behavior_lake.jobs.train_churn import cli

if __name__ == "__main__":
    sys.exit(cli())
