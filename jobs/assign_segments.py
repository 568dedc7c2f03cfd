"""Score persons with the champion segmentation model into gold.user_segments.

Entry point for spark-submit and Databricks (spark_python_task) of
`behavior_lake.jobs.assign_segments`, where the job is declared and documented:

    python jobs/assign_segments.py --help
"""

import sys

from behavior_lake.jobs.assign_segments import cli

if __name__ == "__main__":
    sys.exit(cli())
