"""Self-healing by default: ``migrate`` alone schedules the sweeper, and a running cluster then
recovers a lost task, an expired lease and a due webhook retry with no operator step.

Unlike the other cluster tests, nothing here sweeps from the test process: every recovery comes
from the ``ledger:sweep`` schedule that the post-migrate handler made, run by the cluster's own
scheduler (about 30 s after it starts, then every minute)."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from ledger import conf
from ledger.claims import function_run_claim
from ledger.models import AttemptOutcome, FunctionRun, RunStatus
from ledger.registry import get_function
from ledger.schedules import SWEEP_FUNC, SWEEP_SCHEDULE_NAME
from ledger.tasks import sweep
from tests.cluster import poll, qcluster
from tests.ledger.helpers import attempts, fresh, run_create
from tests.webhooks.helpers import fixture_body
from webhooks.models import EventStatus, WebhookEvent

RECOVERY_SECONDS = 120  # the scheduler's first tick (~30 s), a sweep, the runs themselves


@pytest.mark.django_db
def test_migrate__leaves_the_sweeper_scheduled_idempotently():
    """The migrated test database has the sweeper's schedule; a second migrate puts a deleted one
    back and never makes two."""
    schedule = Schedule.objects.get(name=SWEEP_SCHEDULE_NAME)
    assert (schedule.func, schedule.schedule_type, schedule.minutes) == (
        SWEEP_FUNC, Schedule.MINUTES, 1)
    call_command("migrate", verbosity=0)
    assert Schedule.objects.filter(name=SWEEP_SCHEDULE_NAME).count() == 1
    Schedule.objects.filter(name=SWEEP_SCHEDULE_NAME).delete()
    call_command("migrate", verbosity=0)
    assert Schedule.objects.filter(name=SWEEP_SCHEDULE_NAME).count() == 1


@pytest.mark.django_db
def test_sweep_task__rings_the_doorbell_for_a_due_webhook_retry():
    """The sweeper's task wakes a drain when an event's retry is due, and only then."""
    assert sweep()["webhooksWoken"] == {"due": False, "rang": False}
    due = _due_retry()
    assert sweep()["webhooksWoken"] == {"due": True, "rang": True}
    WebhookEvent.objects.filter(pk=due.pk).update(next_attempt_at=timezone.now()
                                                  + timedelta(minutes=5))
    assert sweep()["webhooksWoken"]["due"] is False


def _due_retry() -> WebhookEvent:
    """An EMAIL_OPENED whose first attempt failed and whose retry is due now: what a drain
    leaves behind when nothing wakes another one."""
    now = timezone.now()
    return WebhookEvent.objects.create(
        event_type="EMAIL_OPENED", dedupe_key=f"self-healing:{now.timestamp()}",
        raw_body=fixture_body("email_opened__basic"), status=EventStatus.PENDING, attempts=1,
        next_attempt_at=now - timedelta(seconds=30), last_error="planned failure",
        received_at=now - timedelta(minutes=2))


def _lost(run: FunctionRun) -> FunctionRun:
    """The run's task never reached the broker, and its delivery is long overdue (past
    LEDGER_REQUEUE_AFTER_SECONDS, plus Django-Q's own redelivery on the ORM broker)."""
    long_ago = timezone.now() - timedelta(hours=3)
    assert timedelta(hours=3) > timedelta(seconds=conf.requeue_after_seconds() + 1200)
    FunctionRun.objects.filter(pk=run.pk).update(queued_at=long_ago, enqueued_at=long_ago)
    return fresh(run)


def _expired_lease(run: FunctionRun) -> FunctionRun:
    """Claimed by a worker that died: running, its lease expired a minute ago."""
    claim = function_run_claim(run_id=run.pk, spec=get_function(run.function),
                               now=timezone.now())
    assert claim.run is not None and fresh(run).status == RunStatus.RUNNING
    FunctionRun.objects.filter(pk=run.pk).update(
        lease_expires_at=timezone.now() - timedelta(minutes=1))
    return fresh(run)


@pytest.mark.cluster
@pytest.mark.django_db(transaction=True)
def test_cluster_after_migrate_only__recovers_lost_task_expired_lease_and_due_webhook(counter):
    """No sync command, no cron, no sweep from the test: the schedule made by migrate runs the
    sweeper in the cluster, which re-sends the lost run, takes back the dead worker's run
    (attempt 2 succeeds) and wakes a drain for the due webhook retry."""
    assert Schedule.objects.filter(name=SWEEP_SCHEDULE_NAME).exists()  # from the flush's migrate
    lost = _lost(run_create("t-ok", {"counter": counter()}))
    dead = _expired_lease(run_create("t-hang-once", {"counter": counter(), "sleep": 0}))
    event = _due_retry()
    with qcluster(workers=2) as cluster:
        poll(lambda: fresh(lost).status == RunStatus.SUCCEEDED, timeout=RECOVERY_SECONDS,
             what="the lost run re-sent and succeeded", clusters=[cluster])
        poll(lambda: fresh(dead).status == RunStatus.SUCCEEDED, timeout=RECOVERY_SECONDS,
             what="the expired lease taken back and attempt 2 succeeded", clusters=[cluster])
        poll(lambda: WebhookEvent.objects.get(pk=event.pk).status == EventStatus.SUCCEEDED,
             timeout=RECOVERY_SECONDS, what="the due webhook retry drained", clusters=[cluster])
    assert [a.outcome for a in attempts(dead)] == [AttemptOutcome.ABANDONED,
                                                   AttemptOutcome.SUCCEEDED]
    assert len(open(lost.payload["counter"]).read().splitlines()) == 1
    assert WebhookEvent.objects.get(pk=event.pk).attempts == 2
