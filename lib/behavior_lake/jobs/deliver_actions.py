"""Deliver fired decisions to the webhook (signed, idempotent, retried, dead-lettered).

    python jobs/deliver_actions.py [--env local]

Sends every fired decision of activation.decisions not yet in activation.deliveries to
activation.webhook.url, signed with HMAC-SHA256 (key in the environment variable named
by activation.webhook.secret_env) and with the decision id as Idempotency-Key. Retries
with exponential backoff; after the last attempt the body goes to activation.dead_letters.
"""

from __future__ import annotations

from behavior_lake.activation.delivery import deliver
from behavior_lake.contracts.activation import DEAD_LETTERS, DECISIONS, DELIVERIES
from behavior_lake.runtime import JobContext, JobDef, out

JOB = "deliver_actions"


def run(ctx: JobContext, args) -> None:
    got = deliver(ctx.lake, ctx.settings.activation.webhook)
    print(f"{JOB}: {got['delivered']} delivered, {got['dead_letter']} dead-lettered")
    ctx.record.rows_out = got["delivered"] + got["dead_letter"]
    ctx.count(**got)


JOB_DEF = JobDef(
    name=JOB,
    description=__doc__.strip().splitlines()[0],
    inputs=(DECISIONS.name,),
    feedback=(DELIVERIES.name,),
    outputs=(out(DELIVERIES.name, "merge"), out(DEAD_LETTERS.name, "append")),
    body=run,
)

cli = JOB_DEF.cli
