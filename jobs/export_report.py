"""External report: behaviour by segment and country, k-anonymous.

Entry point for spark-submit and Databricks (spark_python_task) of
`behavior_lake.jobs.export_report`, where the job is declared and documented:

    python jobs/export_report.py --help
"""

import sys

from behavior_lake.jobs.export_report import cli

if __name__ == "__main__":
    sys.exit(cli())
