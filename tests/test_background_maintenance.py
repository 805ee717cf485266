"""background-maintenance: abandoned runs fail, old windows and runs are pruned, health reported."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from cron.models import DispatchWindow, WindowStatus
from jobs.functions import background_maintenance
from ledger.models import FunctionRun, RunReason, RunStatus


def make_run(**fields) -> FunctionRun:
    defaults = dict(function="process-background-jobs", source="cron:http",
                    queued_at=timezone.now(), max_attempts=1)
    return FunctionRun.objects.create(**{**defaults, **fields})


@pytest.mark.django_db
def test_maintenance__run_left_running_past_its_lease_becomes_failed_abandoned():
    now = timezone.now()
    stuck = make_run(status=RunStatus.RUNNING, attempt=1, claim_token=uuid.uuid4(),
                     started_at=now - timedelta(hours=2), heartbeat_at=now - timedelta(hours=2),
                     lease_expires_at=now - timedelta(minutes=1))
    alive = make_run(status=RunStatus.RUNNING, attempt=1, claim_token=uuid.uuid4(),
                     started_at=now, heartbeat_at=now, lease_expires_at=now + timedelta(minutes=1))
    result = background_maintenance({})
    stuck.refresh_from_db()
    alive.refresh_from_db()
    assert stuck.status == RunStatus.FAILED and stuck.reason == RunReason.ABANDONED
    assert stuck.finished_at is not None and "abandoned" in stuck.error
    assert alive.status == RunStatus.RUNNING
    assert result["runs"]["abandoned"] >= 1


@pytest.mark.django_db
def test_maintenance__prunes_windows_and_finished_runs_past_retention(settings):
    settings.CRON_DISPATCH_WINDOW_RETENTION_DAYS = 30
    settings.LEDGER_RUN_RETENTION_DAYS = 30
    now = timezone.now()
    old, recent = now - timedelta(days=31), now - timedelta(days=29)
    for index, created in enumerate([old, old, recent]):
        DispatchWindow.objects.create(
            dispatch_key=f"c:v1:60:{index}", cron="c", window_start=created, window_seconds=60,
            status=WindowStatus.ENQUEUED, source="cron:http", correlation_id="x",
            requested_at=created, created_at=created, updated_at=created)
    make_run(status=RunStatus.SUCCEEDED, queued_at=old, finished_at=old)
    kept_recent = make_run(status=RunStatus.SUCCEEDED, queued_at=recent, finished_at=recent)
    kept_queued = make_run(status=RunStatus.QUEUED, queued_at=old)
    result = background_maintenance({})
    assert result["windowsPruned"] == {"deleted": 2}
    assert result["runsPruned"] == {"deleted": 1}
    assert list(DispatchWindow.objects.values_list("dispatch_key", flat=True)) == ["c:v1:60:2"]
    assert set(FunctionRun.objects.values_list("pk", flat=True)) >= {kept_recent.pk, kept_queued.pk}


@pytest.mark.django_db
def test_maintenance__prunes_in_bounded_batches(settings):
    settings.LEDGER_PRUNE_BATCH_SIZE = 3
    old = timezone.now() - timedelta(days=400)
    for _ in range(5):
        make_run(status=RunStatus.FAILED, reason=RunReason.ERROR, queued_at=old, finished_at=old)
    assert background_maintenance({})["runsPruned"] == {"deleted": 3}
    assert background_maintenance({})["runsPruned"] == {"deleted": 2}


@pytest.mark.django_db
def test_maintenance__reports_queue_health():
    make_run(status=RunStatus.QUEUED, queued_at=timezone.now() - timedelta(seconds=90))
    health = background_maintenance({})["runHealth"]
    assert health["runsQueued"] == 1
    assert health["oldestQueuedAgeSeconds"] >= 90
