"""Ingest new landing files into bronze.events / bronze.quarantine.

Entry point for spark-submit and Databricks (spark_python_task) of
`behavior_lake.jobs.bronze_ingest`, where the job is declared and documented:

    python jobs/bronze_ingest.py --help
"""

import sys

from behavior_lake.jobs.bronze_ingest import cli

if __name__ == "__main__":
    sys.exit(cli())
