"""Sync segments and churn scores to the webhook (only persons that changed) and Redis.

    python jobs/sync_profiles.py [--no-webhook] [--no-redis] [--env local]

Daily, after scoring: the latest segment, churn probability and decile per person are
written to the Redis profile cache, and the persons whose values changed since the last
successful sync (activation.sync_state) are POSTed to activation.webhook.url in batches
of activation.webhook.batch_size, signed and with an idempotency key per batch. A batch
that fails after its retries is sent again on the next run.
"""

from __future__ import annotations

import argparse

from behavior_lake.activation.cache import cache_profiles
from behavior_lake.activation.delivery import sync_profiles
from behavior_lake.contracts.activation import SYNC_STATE
from behavior_lake.contracts.ml import CHURN_SCORES, USER_SEGMENTS
from behavior_lake.runtime import JobContext, JobDef, out

JOB = "sync_profiles"


def run(ctx: JobContext, args) -> None:
    a = ctx.settings.activation
    if not args.no_redis:
        cached = cache_profiles(ctx.lake, a.redis)
        print(f"{JOB}: redis: {cached['written']} profile(s) cached, {cached['failed']} failed")
        ctx.count(cached=cached["written"], cache_failed=cached["failed"])
    if not args.no_webhook:
        got = sync_profiles(ctx.lake, a.webhook)
        print(f"{JOB}: webhook: {got['synced']} changed person(s) sent, {got['failed']} failed")
        ctx.record.rows_out = got["synced"]
        ctx.count(**got)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-webhook", action="store_true", help="only refresh Redis")
    parser.add_argument("--no-redis", action="store_true", help="only sync the webhook")


JOB_DEF = JobDef(
    name=JOB,
    description=__doc__.strip().splitlines()[0],
    inputs=(CHURN_SCORES.name, USER_SEGMENTS.name),
    feedback=(SYNC_STATE.name,),
    outputs=(out(SYNC_STATE.name, "merge"),),
    body=run,
    arguments=_arguments,
)

cli = JOB_DEF.cli
