"""followups: exact results on fixed data, idempotency, and the lock on both databases."""

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext
from freezegun import freeze_time

from jobs import conf, followups
from jobs.followups import followups_run
from jobs.locks import advisory_key, cron_lock
from jobs.models import (
    Appointment,
    Client,
    CronLease,
    FollowUpInstance,
    FollowUpSequence,
    FollowUpStep,
    FollowUpTask,
    Lead,
)
from ledger.exceptions import RunSkipped
from tests.conftest import on_postgres
from tests.test_settings_env import settings_error

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
RESULT_KEYS = ["completedBooked", "resumed", "paused", "tasksCreated", "advanced", "completed",
               "errors", "exhausted", "durationMs"]


@pytest.fixture
def sequence(db):
    client = Client.objects.create(name="Acme")
    sequence = FollowUpSequence.objects.create(client=client, name="Nudges")
    for order, (delay, body) in enumerate([(0, "Hi {first_name}"), (24, "Bump, {first_name}?"),
                                           (48, "Last note to {email}")]):
        FollowUpStep.objects.create(sequence=sequence, order=order, delay_hours=delay,
                                    body_template=body)
    return sequence


def enrol(sequence, name, *, step=0, due=NOW - HOUR, status="active", pause_reason="",
          inbound=None, outbound=NOW - 2 * DAY, **lead_fields) -> FollowUpInstance:
    lead = Lead.objects.create(client=sequence.client, email=f"{name}@example.com",
                               first_name=name.title(), last_inbound_at=inbound,
                               last_outbound_at=outbound, **lead_fields)
    return FollowUpInstance.objects.create(lead=lead, sequence=sequence, current_step=step,
                                           next_step_due_at=due, status=status,
                                           pause_reason=pause_reason)


@pytest.fixture
def instances(sequence):
    """One instance per case a run tells apart."""
    paused = dict(status="paused", pause_reason="lead_replied", due=None)
    made = {
        "ada": enrol(sequence, "ada"),  # due: its first step
        "bea": enrol(sequence, "bea", step=2, due=NOW - timedelta(minutes=5)),  # the last step
        "cat": enrol(sequence, "cat", step=1, inbound=NOW - DAY, outbound=NOW - 3 * DAY),
        "dan": enrol(sequence, "dan"),  # due, but a meeting is booked
        "eve": enrol(sequence, "eve", inbound=NOW - DAY, **paused),  # paused, meeting booked
        "fay": enrol(sequence, "fay", step=1, inbound=NOW - 8 * DAY, outbound=NOW - 10 * DAY,
                     **paused),  # quiet for 8 days
        "gus": enrol(sequence, "gus", step=1, inbound=NOW - 2 * DAY, **paused),  # not quiet yet
        "hal": enrol(sequence, "hal", due=NOW + HOUR),  # not due
        "ivy": enrol(sequence, "ivy", step=5),  # its step does not exist
        "jon": enrol(sequence, "jon", auto_follow_up_enabled=False),
    }
    Lead.objects.filter(pk=made["dan"].lead_id).update(status="meeting-booked")
    Appointment.objects.create(lead=made["eve"].lead, provider_id="apt-1", status="booked",
                               start_at=NOW + DAY, created_at=NOW, updated_at=NOW)
    return made


def state() -> dict:
    """Each lead's instance and tasks, as comparable values."""
    rows = FollowUpInstance.objects.order_by("lead__email").values_list(
        "lead__first_name", "status", "pause_reason", "current_step", "next_step_due_at",
        "paused_at")
    tasks = FollowUpTask.objects.order_by("lead__email", "step_order").values_list(
        "lead__first_name", "kind", "step_order", "due_at", "channel", "body", "status",
        "created_at")
    return {"instances": {row[0]: row[1:] for row in rows}, "tasks": list(tasks)}


def run(**options) -> dict:
    with freeze_time(NOW):
        return followups_run(now=NOW, **options)


def test_followups_run__exact_result_on_fixed_data(instances):
    """Booked leads complete, a quiet lead resumes, a replying lead pauses, due steps become
    tasks and advance or complete, a missing step is an error; the rest is untouched."""
    result = run()
    assert list(result) == RESULT_KEYS
    assert result == {"completedBooked": 2, "resumed": 1, "paused": 1, "tasksCreated": 3,
                      "advanced": 2, "completed": 1, "errors": 1, "exhausted": True,
                      "durationMs": 0}
    after = state()
    assert after["instances"] == {
        "Ada": ("active", "", 1, NOW + 24 * HOUR, None),
        "Bea": ("completed", "", 3, None, None),
        "Cat": ("paused", "lead_replied", 1, NOW - HOUR, NOW),
        "Dan": ("completed", "", 0, None, None),
        "Eve": ("completed", "", 0, None, None),
        "Fay": ("active", "", 2, NOW + 48 * HOUR, None),
        "Gus": ("paused", "lead_replied", 1, None, None),
        "Hal": ("active", "", 0, NOW + HOUR, None),
        "Ivy": ("active", "", 5, NOW - HOUR, None),
        "Jon": ("active", "", 0, NOW - HOUR, None),
    }
    assert after["tasks"] == [
        ("Ada", "step", 0, NOW - HOUR, "email", "Hi Ada", "pending", NOW),
        ("Bea", "step", 2, NOW - timedelta(minutes=5), "email", "Last note to bea@example.com",
         "pending", NOW),
        ("Fay", "step", 1, NOW, "email", "Bump, Fay?", "pending", NOW),
    ]


def test_followups_run__second_run_changes_nothing(instances):
    """Running twice: the second run changes no row (the missing step is reported again)."""
    run()
    before = state()
    result = run()
    assert result == {"completedBooked": 0, "resumed": 0, "paused": 0, "tasksCreated": 0,
                      "advanced": 0, "completed": 0, "errors": 1, "exhausted": True,
                      "durationMs": 0}
    assert state() == before


def test_followups_run__a_step_is_produced_once(instances):
    """A task already made for the instance's step (a run that died after its insert) is not
    made again; the instance still moves on."""
    ada = instances["ada"]
    FollowUpTask.objects.create(lead=ada.lead, instance=ada, step_order=0, due_at=NOW - HOUR,
                                body="Hi Ada", created_at=NOW - HOUR)
    result = run()
    assert (result["tasksCreated"], result["advanced"]) == (2, 2)
    assert FollowUpTask.objects.filter(instance=ada).count() == 1
    ada.refresh_from_db()
    assert ada.current_step == 1


def test_followups_run__small_batches_reach_every_due_instance(instances):
    """Batches of one give the same rows as one batch of 200."""
    run(batch_size=1)
    one_at_a_time = state()
    FollowUpTask.objects.all().delete()
    for name, instance in instances.items():
        instance.save()  # back to the fixture's values
    run()
    assert state() == one_at_a_time


def test_followups_run__budget_stops_between_batches(instances):
    """With the budget spent after the first batch, the run says exhausted false; the next run
    finishes the work."""
    with freeze_time(NOW, auto_tick_seconds=1):
        first = followups_run(now=NOW, batch_size=1, budget_seconds=1.5)
    assert first["exhausted"] is False
    assert first["tasksCreated"] + first["paused"] + first["errors"] == 1
    second = run()
    assert second["exhausted"] is True
    assert first["tasksCreated"] + second["tasksCreated"] == 3


def test_followups_run__queries_per_batch_do_not_grow_with_rows(sequence):
    """Every batch costs the same queries however many of its instances produce a task."""
    for number in range(10):
        enrol(sequence, f"lead{number}")

    def queries(batch_size: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            run(batch_size=batch_size)
        return len(captured)

    ten_batches_of_one = queries(1)
    FollowUpTask.objects.all().delete()
    FollowUpInstance.objects.update(current_step=0, next_step_due_at=NOW - HOUR)
    one_batch_of_ten = queries(10)
    per_batch = (ten_batches_of_one - one_batch_of_ten) // 9
    # A batch: its instances with their leads, their steps, and in a transaction (a savepoint
    # here) the tasks' insert (in a savepoint of its own) and the instances' update.
    assert per_batch == 8
    assert ten_batches_of_one - 9 * per_batch == one_batch_of_ten


# --- the lock ------------------------------------------------------------------------------


def lock_is_free() -> bool:
    """Whether another session could take the followups lock now."""
    if not on_postgres():
        return not CronLease.objects.filter(name="followups").exists()
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [advisory_key("followups")])
            free = cursor.fetchone()[0]
            if free:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [advisory_key("followups")])
        return free
    finally:
        other.close()


@pytest.mark.django_db(transaction=True)
def test_followups_run__two_runs_at_once_one_is_skipped_locked(instances, monkeypatch):
    """Two runs in two threads: the second, started while the first holds the lock, answers
    skipped/locked and changes nothing; the lock is free once the first is done."""
    holding, release = threading.Event(), threading.Event()
    real_advance = followups.followups_advance

    def slow_advance(**kwargs):
        holding.set()
        assert release.wait(10)
        return real_advance(**kwargs)

    monkeypatch.setattr(followups, "followups_advance", slow_advance)
    results = {}

    def first():
        try:
            results["first"] = followups_run(now=NOW)
        finally:
            connection.close()

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert holding.wait(10)
        monkeypatch.setattr(followups, "followups_advance", real_advance)
        with pytest.raises(RunSkipped) as skipped:
            followups_run(now=NOW)
    finally:
        release.set()
        thread.join(10)
    assert skipped.value.reason == "locked"
    assert results["first"]["tasksCreated"] == 3
    assert lock_is_free()


@pytest.mark.django_db(transaction=True)
def test_followups_run__lock_is_free_after_the_run_raised(instances, monkeypatch):
    """A run that raises still releases the lock, and the next run goes ahead."""

    def broken_advance(**kwargs):
        assert not lock_is_free()
        raise RuntimeError("boom")

    monkeypatch.setattr(followups, "followups_advance", broken_advance)
    with pytest.raises(RuntimeError, match="boom"):
        followups_run(now=NOW)
    assert lock_is_free()
    monkeypatch.undo()
    assert run()["tasksCreated"] == 3


@pytest.mark.skipif(not on_postgres(), reason="advisory locks are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_cron_lock__release_on_a_broken_connection_closes_it(db):
    """When the holder's session is killed mid-run, the release cannot run: the connection is
    closed (its lock went with the session), nothing raises, and the next query reconnects."""
    with cron_lock("followups", ttl_seconds=60) as acquired:
        assert acquired
        pid = connection.connection.info.backend_pid
        killer = connections.create_connection("default")
        try:
            with killer.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        finally:
            killer.close()
    assert connection.connection is None
    # The killed backend releases its locks as it exits, a moment after the signal.
    deadline = time.monotonic() + 10
    while not lock_is_free():
        assert time.monotonic() < deadline, "the killed session's lock was never released"
        time.sleep(0.05)
    assert Client.objects.count() == 0  # the next query reconnects


@pytest.mark.skipif(not on_postgres(), reason="advisory locks are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_cron_lock__held_by_another_session_is_not_acquired(db):
    """A lock held by another session (another process) is reported as not acquired."""
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [advisory_key("followups")])
        with cron_lock("followups", ttl_seconds=60) as acquired:
            assert acquired is False
        with other.cursor() as cursor:  # released now (a closed session releases a bit later)
            cursor.execute("SELECT pg_advisory_unlock(%s)", [advisory_key("followups")])
    finally:
        other.close()
    with cron_lock("followups", ttl_seconds=60) as acquired:
        assert acquired is True


@pytest.mark.skipif(on_postgres(), reason="the lease row is the SQLite lock")
def test_cron_lock__sqlite_lease_held_then_expired(db):
    """SQLite: an unexpired lease of another holder refuses the lock; once expired it is taken
    over; the holder's release deletes it."""
    with freeze_time(NOW):
        CronLease.objects.create(name="followups", holder="other", expires_at=NOW + HOUR)
        with pytest.raises(RunSkipped, match="locked"):
            followups_run(now=NOW)
    with freeze_time(NOW + HOUR):
        with cron_lock("followups", ttl_seconds=60) as acquired:
            lease = CronLease.objects.get(name="followups")
            assert acquired and lease.holder != "other"
            assert lease.expires_at == NOW + HOUR + timedelta(seconds=60)
    assert not CronLease.objects.exists()


@pytest.mark.skipif(not on_postgres(), reason="SKIP LOCKED is PostgreSQL's; SQLite serializes "
                                              "writers instead")
@pytest.mark.django_db(transaction=True)
def test_followups_run__an_instance_a_webhook_holds_is_left_to_the_next_run(instances):
    """An instance row locked by another transaction (a webhook pausing it) is passed by, not
    waited for; the next run produces its step."""
    other = connections.create_connection("default")
    try:
        other.set_autocommit(False)
        with other.cursor() as cursor:
            cursor.execute("SELECT id FROM jobs_followupinstance WHERE id = %s FOR UPDATE",
                           [instances["ada"].pk])
        first = run()
        other.rollback()
    finally:
        other.close()
    assert first["tasksCreated"] == 2
    assert not FollowUpTask.objects.filter(instance=instances["ada"]).exists()
    assert run()["tasksCreated"] == 1
    assert FollowUpTask.objects.filter(instance=instances["ada"], step_order=0).count() == 1


@pytest.mark.parametrize("name,value", [("RESPONSE_TIMING_TIME_BUDGET_SECONDS", "300"),
                                        ("FOLLOWUPS_TIME_BUDGET_SECONDS", "soon"),
                                        ("FOLLOWUPS_LOCK_SECONDS", "60")])
def test_cron_settings__bad_environment_stops_start_up(name, value):
    """A budget at or past its function's timeout, or a lease shorter than a run, is a start-up
    error naming the variable."""
    assert f"{name}=" in settings_error(**{name: value})


def test_cron_settings__budgets_are_read_at_call_time(settings):
    """jobs.conf reads the budgets when a run starts (override_settings works)."""
    settings.RESPONSE_TIMING_TIME_BUDGET_SECONDS = 12
    settings.FOLLOWUPS_TIME_BUDGET_SECONDS = 34
    assert (conf.response_timing_budget_seconds(), conf.followups_budget_seconds()) == (12, 34)
