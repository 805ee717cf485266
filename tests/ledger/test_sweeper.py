"""The sweeper in-process, its Django-Q schedule, the maintenance step, and the system checks."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone
from django_q.models import Schedule

from ledger import checks
from ledger.claims import function_run_claim
from ledger.maintenance import maintenance_steps
from ledger.models import AttemptOutcome, FunctionRun, RunReason, RunStatus
from ledger.registry import get_function
from ledger.schedules import SWEEP_SCHEDULE_NAME, ledger_schedule_sync
from ledger.sweeper import SETTLE_SECONDS, ledger_prune, ledger_sweep
from tests.ledger.helpers import attempts, broker_run_ids, fresh, run_create

pytestmark = pytest.mark.django_db


def later(seconds):
    return timezone.now() + timedelta(seconds=seconds)


def test_sweep__expired_lease_taken_back_and_sent_again():
    """A running run whose lease lapsed becomes attempt 2's queued run and is sent at once."""
    run = run_create("t-hang-once")
    function_run_claim(run_id=run.pk, spec=get_function("t-hang-once"), now=timezone.now())
    counts = ledger_sweep(now=later(3600))
    assert counts == {"retried": 1, "abandoned": 0, "resent": 1}
    assert broker_run_ids() == [run.pk]
    assert fresh(run).status == RunStatus.QUEUED and fresh(run).enqueued_at is not None
    assert attempts(run)[0].outcome == AttemptOutcome.ABANDONED


def test_sweep__due_run_without_delivery_sent_once_settled_and_not_twice():
    """A queued run with no delivery out is sent after the settle time, then left alone."""
    run = run_create("t-ok")
    assert ledger_sweep(now=timezone.now())["resent"] == 0  # its dispatch sends it
    assert ledger_sweep(now=later(SETTLE_SECONDS + 1))["resent"] == 1
    assert ledger_sweep(now=later(SETTLE_SECONDS + 2))["resent"] == 0
    assert broker_run_ids() == [run.pk]


def test_sweep__lost_delivery_sent_again_after_the_threshold(settings):
    """A delivery that never started is sent again past the threshold (plus Django-Q's own
    retry on the ORM broker, which redelivers by itself first)."""
    from django_q.conf import Conf

    from ledger.enqueue import broker_is_transactional

    settings.LEDGER_REQUEUE_AFTER_SECONDS = 60
    run = run_create("t-ok")
    FunctionRun.objects.filter(pk=run.pk).update(enqueued_at=timezone.now())
    threshold = 60 + (Conf.RETRY if broker_is_transactional() else 0)
    assert ledger_sweep(now=later(threshold - 5))["resent"] == 0
    assert ledger_sweep(now=later(threshold + 5))["resent"] == 1
    assert broker_run_ids() == [run.pk]


def test_sweep__next_attempt_not_yet_due_is_not_sent():
    """A run waiting for its backoff is sent only once due."""
    run = run_create("t-ok")
    FunctionRun.objects.filter(pk=run.pk).update(next_attempt_at=later(600))
    assert ledger_sweep(now=later(300))["resent"] == 0
    assert ledger_sweep(now=later(601))["resent"] == 1
    assert broker_run_ids() == [run.pk]


def test_sweep__inline_run_never_claimed_ends_failed_abandoned():
    """An inline run whose process died before claiming it is failed/abandoned."""
    run = run_create("t-ok")
    FunctionRun.objects.filter(pk=run.pk).update(inline=True)
    assert ledger_sweep(now=later(3600))["abandoned"] == 1
    assert (fresh(run).status, fresh(run).reason) == (RunStatus.FAILED, RunReason.ABANDONED)


def test_sweep__runs_from_background_maintenance():
    """The sweeper is a registered maintenance step, as is pruning."""
    steps = maintenance_steps()
    assert steps["runs"] is ledger_sweep
    assert "runsPruned" in steps


def test_prune__only_finished_runs_past_retention(settings):
    """Pruning deletes terminal runs past retention and nothing active."""
    settings.LEDGER_RUN_RETENTION_DAYS = 1
    old, active = run_create("t-ok"), run_create("t-ok")
    FunctionRun.objects.filter(pk=old.pk).update(
        status=RunStatus.CANCELLED, reason=RunReason.CANCELLED_BY_OPERATOR,
        finished_at=timezone.now() - timedelta(days=2))
    assert ledger_prune(now=timezone.now()) == 1
    assert list(FunctionRun.objects.values_list("pk", flat=True)) == [active.pk]


def test_schedule_sync__creates_every_minute_schedule_idempotently():
    """ledger:sweep runs ledger.tasks.sweep every minute; a second sync changes nothing,
    and a sync puts an edited schedule back without moving its next run."""
    first = ledger_schedule_sync()
    assert (first.func, first.schedule_type, first.minutes, first.repeats) == (
        "ledger.tasks.sweep", Schedule.MINUTES, 1, -1)
    next_run = first.next_run
    assert ledger_schedule_sync().pk == first.pk
    Schedule.objects.filter(pk=first.pk).update(minutes=30, func="elsewhere.sweep")
    again = ledger_schedule_sync()
    assert Schedule.objects.filter(name=SWEEP_SCHEDULE_NAME).count() == 1
    assert (again.func, again.minutes, again.next_run) == ("ledger.tasks.sweep", 1, next_run)


def test_sweep_task__is_importable_and_sweeps():
    """The schedule's function path resolves and runs the sweep, then the every-minute steps."""
    from pydoc import locate

    result = locate("ledger.tasks.sweep")()
    assert {key: result[key] for key in ("retried", "abandoned", "resent")} == {
        "retried": 0, "abandoned": 0, "resent": 0}
    assert {"webhookLeases", "webhooksWoken", "windowsSettled"} <= set(result)
    assert "windowsPruned" not in result  # pruning is background-maintenance's, not every minute
    assert "errors" not in result


def test_check_e001__retry_not_above_longest_delivery_fails():
    """ledger.E001 fails when Q_CLUSTER retry is not above the longest timeout plus margin."""
    needed = checks.longest_task_timeout_seconds() + checks.RETRY_MARGIN_SECONDS
    with mock.patch.object(checks.Conf, "RETRY", needed):
        assert "ledger.E001" in [error.id for error in checks.check_q_cluster_retry()]
    with mock.patch.object(checks.Conf, "RETRY", needed + 1):
        assert "ledger.E001" not in [error.id for error in checks.check_q_cluster_retry()]
    assert checks.check_q_cluster_retry() == []  # the shipped settings pass


def test_check_e001__follows_the_longest_registered_timeout(make_function):
    """Registering a longer function raises what retry must exceed."""
    before = checks.longest_task_timeout_seconds()
    make_function("t-very-long", timeout_seconds=5000)
    assert checks.longest_task_timeout_seconds() > before
    assert "ledger.E001" in [error.id for error in checks.check_q_cluster_retry()]


def test_check_e003__django_q_retrying_on_its_own_fails():
    """ledger.E003 fails when Django-Q would retry (max_attempts) or keep failed tasks."""
    with mock.patch.object(checks.Conf, "MAX_ATTEMPTS", 0):
        assert "ledger.E003" in [error.id for error in checks.check_q_cluster_retry()]
    with mock.patch.object(checks.Conf, "ACK_FAILURES", False):
        assert "ledger.E003" in [error.id for error in checks.check_q_cluster_retry()]
