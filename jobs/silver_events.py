"""Build silver: identity map, typed/deduplicated/consented events, rejects, sessions.

Entry point for spark-submit and Databricks (spark_python_task) of
`behavior_lake.jobs.silver_events`, where the job is declared and documented:

    python jobs/silver_events.py --help
"""

import sys

from behavior_lake.jobs.silver_events import cli

if __name__ == "__main__":
    sys.exit(cli())
