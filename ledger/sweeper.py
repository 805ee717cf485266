"""The sweeper: no run stuck in ``running``, no run lost by a broker, nothing kept forever.

Runs as a maintenance step: on the ledger's own Django-Q schedule every minute
(``ledger.tasks.sweep``) and from ``background-maintenance``. Each pass
is bounded and idle-cheap: a few indexed queries when there is nothing to do.
"""

import logging
from datetime import timedelta

from django.db.models import Q
from django_q.conf import Conf

from ledger import conf, metrics
from ledger.enqueue import broker_is_transactional
from ledger.models import FunctionRun, RunReason, RunStatus, TERMINAL_STATUSES
from ledger.claims import function_run_take_back
from ledger.services import function_run_send

logger = logging.getLogger(__name__)
BATCH = 200
# A run never started and just created is sent by its dispatch (on Redis after the commit,
# within the broker's timeouts); the sweeper leaves it alone this long.
SETTLE_SECONDS = 30


def ledger_sweep(*, now) -> dict:
    """Take back runs whose lease expired and send queued runs that are due. Returns counts."""
    retried = abandoned = 0
    expired = FunctionRun.objects.filter(status=RunStatus.RUNNING, lease_expires_at__lte=now)
    for run in expired.order_by("lease_expires_at")[:BATCH]:
        taken = function_run_take_back(run=run, now=now)
        if taken is None:
            continue
        metrics.run_finished(taken)
        if taken.status == RunStatus.FAILED:
            abandoned += 1
        else:
            retried += 1
    resent = sum(_send(run, now) for run in _due_queued_runs(now))
    abandoned += ledger_abandon_stale_inline(now=now)
    counts = {"retried": retried, "abandoned": abandoned, "resent": resent}
    if retried or abandoned or resent:
        logger.info("ledger swept", extra={"action": "ledger_swept", **counts})
    return counts


def _due_queued_runs(now):
    """Queued runs that are due with no delivery out (taken back, waiting for a slot, a next
    attempt left to the sweeper), and runs whose delivery went out long ago and never started
    (lost: Redis drops a task held by a dying cluster; on the ORM broker Django-Q redelivers
    after ``retry`` itself, so only a task row deleted by hand is lost there)."""
    past_its_dispatch = Q(attempt__gt=0) | Q(
        queued_at__lte=now - timedelta(seconds=SETTLE_SECONDS))
    due = Q(enqueued_at__isnull=True) & past_its_dispatch & (
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    lost_after = conf.requeue_after_seconds()
    if broker_is_transactional():
        lost_after += Conf.RETRY or 0
    due |= Q(enqueued_at__lte=now - timedelta(seconds=lost_after))
    queued = FunctionRun.objects.filter(status=RunStatus.QUEUED, inline=False)
    return queued.filter(due).order_by("queued_at")[:BATCH]


def _send(run: FunctionRun, now) -> int:
    try:
        function_run_send(run=run, now=now)
    except Exception:
        logger.exception("sweeper could not send a run", extra={"action": "ledger_resend_failed",
                                                                 "run_id": run.pk})
        return 0
    return 1


def ledger_abandon_stale_inline(*, now) -> int:
    """Inline runs created but never claimed (their web process died) end failed/abandoned."""
    before = now - timedelta(seconds=conf.requeue_after_seconds())
    return FunctionRun.objects.filter(
        status=RunStatus.QUEUED, inline=True, queued_at__lte=before
    ).update(status=RunStatus.FAILED, reason=RunReason.ABANDONED, finished_at=now,
             error="inline run never started: its process stopped before claiming it")


def ledger_prune(*, now, batch_size: int | None = None) -> int:
    """Delete finished runs past retention, in bounded batches. Returns how many went."""
    batch_size = batch_size or conf.prune_batch_size()
    cutoff = now - timedelta(days=conf.run_retention_days())
    old = FunctionRun.objects.filter(status__in=TERMINAL_STATUSES, finished_at__lt=cutoff)
    ids = list(old.order_by("finished_at").values_list("pk", flat=True)[:batch_size])
    if not ids:
        return 0
    FunctionRun.objects.filter(pk__in=ids).delete()
    return len(ids)
