"""Write the insights report: a static site from the gold and ops tables.

Entry point for spark-submit and Databricks (spark_python_task) of
`behavior_lake.jobs.build_report`, where the job is declared and documented:

    python jobs/build_report.py --help
"""

import sys

from behavior_lake.jobs.build_report import cli

if __name__ == "__main__":
    sys.exit(cli())
