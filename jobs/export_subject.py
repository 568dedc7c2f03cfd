"""Subject access export: every row about a user across layers, as a JSON bundle.

Entry point for spark-submit and Databricks (spark_python_task) of
`behavior_lake.jobs.export_subject`, where the job is declared and documented:

    python jobs/export_subject.py --help
"""

import sys

from behavior_lake.jobs.export_subject import cli

if __name__ == "__main__":
    sys.exit(cli())
