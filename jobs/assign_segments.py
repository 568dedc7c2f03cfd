"""Score persons with the champion segmentation model into gold.user_segments.

    python jobs/assign_segments.py [--env local] [--as-of DATE] [--conf key=value ...]

Scores every person of the latest (or the given) gold.user_features snapshot, new
persons included (no retraining), replacing that snapshot's rows (idempotent). Records
the segment-share shift against training (PSI) in ops.segment_drift with a
retrain_recommended flag. Fails with a clear message when no champion exists.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from behavior_lake.ml.segment_jobs import assign_segments
from behavior_lake.runtime import JobContext, base_parser, iso_date, main

JOB = "assign_segments"


def run(ctx: JobContext, args) -> None:
    res = assign_segments(ctx.lake, ctx.settings, args.as_of)
    ctx.record.rows_out = res.persons
    ctx.count(persons=res.persons, retrain_recommended=int(res.retrain_recommended))


def cli(argv: list[str] | None = None) -> int:
    parser = base_parser(JOB, __doc__.strip().splitlines()[0])
    parser.add_argument("--as-of", type=iso_date, help="snapshot date (default: the latest)")
    return main(JOB, argv, parser, run)


if __name__ == "__main__":
    sys.exit(cli())
