"""Run the activation stream: landed events -> decisions, exactly once, until stopped.

Entry point for spark-submit and Databricks (spark_python_task) of
`behavior_lake.jobs.activation_stream`, where the job is declared and documented:

    python jobs/activation_stream.py --help
"""

import sys

from behavior_lake.jobs.activation_stream import cli

if __name__ == "__main__":
    sys.exit(cli())
