"""Right to erasure: file requests for the subjects given, then process every pending one.

Entry point for spark-submit and Databricks (spark_python_task) of
`behavior_lake.jobs.erase_subjects`, where the job is declared and documented:

    python jobs/erase_subjects.py --help
"""

import sys

from behavior_lake.jobs.erase_subjects import cli

if __name__ == "__main__":
    sys.exit(cli())
