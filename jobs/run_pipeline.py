"""Run the pipeline DAG (conf pipeline.tasks) locally in one Spark session.

Entry point for spark-submit and Databricks (spark_python_task) of
`behavior_lake.jobs.run_pipeline`, where the job is declared and documented:

    python jobs/run_pipeline.py --help
"""

import sys

from behavior_lake.jobs.run_pipeline import cli

if __name__ == "__main__":
    sys.exit(cli())
