"""Generate a realistic landing set (demo, tests, benchmarks); truth goes to truth/.

Entry point for spark-submit and Databricks (spark_python_task) of
`behavior_lake.jobs.generate_events`, where the job is declared and documented:

    python jobs/generate_events.py --help
"""

import sys

from behavior_lake.jobs.generate_events import cli

if __name__ == "__main__":
    sys.exit(cli())
