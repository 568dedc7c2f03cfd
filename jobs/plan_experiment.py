"""Plan an experiment: sample size per variant, detectable effect, duration (no Spark).

Entry point of `behavior_lake.experiments.plan`, where it is documented:

    python jobs/plan_experiment.py --help
"""

import sys

from behavior_lake.experiments.plan import main

if __name__ == "__main__":
    sys.exit(main())
