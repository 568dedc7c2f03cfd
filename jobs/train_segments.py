"""Train the behavioral segmentation model, track it in MLflow and gate it to champion.

Entry point for spark-submit and Databricks (spark_python_task) of
`behavior_lake.jobs.train_segments`, where the job is declared and documented:

    python jobs/train_segments.py --help
"""

import sys

from behavior_lake.jobs.train_segments import cli

if __name__ == "__main__":
    sys.exit(cli())
