"""The appointment-reconcile cron's work against a local booking provider: exact results on
fixed data, idempotency, dryRun, provider errors, the circuit breaker and the time budget."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from jobs.appointment_reconcile import appointments_reconcile
from jobs.models import (
    Appointment,
    Client,
    FollowUpInstance,
    FollowUpSequence,
    FollowUpStatus,
    FollowUpTask,
    Lead,
    LeadStatus,
    PauseReason,
)
from tests.jobs.provider_server import Reply, provider_server  # noqa: F401

NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
IN_2_DAYS = "2026-03-04T14:00:00Z"


def booking_client(server, name: str, **fields) -> Client:
    fields = {"booking_provider": "json", "booking_base_url": f"{server.base_url}/{name}",
              "booking_api_key": f"key-{name}", **fields}
    return Client.objects.create(name=name, **fields)


def hot_lead(client, email, **fields) -> Lead:
    """A lead with an active follow-up."""
    lead = Lead.objects.create(client=client, email=email, **fields)
    sequence, _ = FollowUpSequence.objects.get_or_create(client=client, name="Nudges")
    FollowUpInstance.objects.create(lead=lead, sequence=sequence, next_step_due_at=NOW)
    return lead


def warm_lead(client, email, **fields) -> Lead:
    """A lead that replied."""
    return Lead.objects.create(client=client, email=email, status=LeadStatus.REPLIED,
                               last_inbound_at=NOW - timedelta(days=30), **fields)


def appointment(lead, provider_id, start, status="booked") -> Appointment:
    return Appointment.objects.create(lead=lead, provider_id=provider_id, status=status,
                                      start_at=start, created_at=NOW - timedelta(days=9),
                                      updated_at=NOW - timedelta(days=9))


def answers(by_email: dict):
    """A responder: each lead's appointments by its email (none for others)."""
    def respond(request):
        found = by_email.get(request.query["email"], [])
        return found if isinstance(found, Reply) else Reply(200, {"appointments": found})
    return respond


@pytest.fixture
def acme(db, provider_server):
    """Hot and warm leads due a check, others not due, and two clients not configured."""
    client = booking_client(provider_server, "acme")
    booked = hot_lead(client, "booked@acme.test")  # books now
    paused = FollowUpInstance.objects.create(
        lead=booked, sequence=FollowUpSequence.objects.create(client=client, name="Other"),
        status=FollowUpStatus.PAUSED, pause_reason=PauseReason.LEAD_REPLIED)
    hot_lead(client, "quiet@acme.test", appointment_last_checked_at=NOW - timedelta(minutes=2))
    hot_lead(client, "justchecked@acme.test",
             appointment_last_checked_at=NOW - timedelta(seconds=30))
    canceler = warm_lead(client, "cancels@acme.test")
    appointment(canceler, "B1", NOW + timedelta(days=1))
    mover = warm_lead(client, "moves@acme.test",
                      appointment_last_checked_at=NOW - timedelta(days=8))
    appointment(mover, "C1", NOW + timedelta(days=3))
    warm_lead(client, "recent@acme.test", appointment_last_checked_at=NOW - timedelta(days=3))
    Lead.objects.create(client=client, email="cold@acme.test")
    hot_lead(client, "stop@acme.test", status=LeadStatus.BLACKLISTED)
    booking_client(provider_server, "nourl", booking_base_url="")
    booking_client(provider_server, "other", booking_provider="calendly")
    Client.objects.create(name="nobooking")
    provider_server.script("GET", "/acme/appointments", answers({
        "booked@acme.test": [{"id": "A1", "status": "booked", "start": IN_2_DAYS,
                              "end": "2026-03-04T14:30:00Z"}],
        "cancels@acme.test": [{"id": "B1", "status": "canceled",
                               "start": "2026-03-03T14:00:00Z"}],
        "moves@acme.test": [{"id": "C1", "status": "booked", "start": "2026-03-06T15:00:00Z"}],
        # an appointment of some other lead would be left alone; quiet has none
    }))
    assert paused.status == FollowUpStatus.PAUSED
    return client


def run(**options) -> dict:
    result = appointments_reconcile(**{
        "now": NOW, "workspace_limit": 20, "leads_per_workspace": 50, "stale_days": 7,
        "client_id": None, "dry_run": False, **options})
    assert result.pop("durationMs") >= 0
    return result


def expected(**changes) -> dict:
    return {"dryRun": False, "workspaces": 3, "workspacesNotConfigured": 2, "checked": 4,
            "hotChecked": 2, "warmChecked": 2, "errors": 0, "booked": 1, "canceled": 1,
            "rescheduled": 1, "followUpsCompleted": 2, "tasksCreated": 1, "errorsByKind": {},
            "circuitBreakerTripped": False, "finishedWithinBudget": True, **changes}


def snapshot() -> dict:
    return {
        "appointments": list(Appointment.objects.order_by("provider_id").values(
            "lead__email", "provider_id", "status", "start_at", "end_at", "canceled_at")),
        "tasks": list(FollowUpTask.objects.order_by("pk").values(
            "lead__email", "kind", "appointment__provider_id", "due_at", "body", "status")),
        "followUps": list(FollowUpInstance.objects.order_by("pk").values("lead__email",
                                                                         "status")),
        "leads": list(Lead.objects.order_by("pk").values(
            "email", "status", "appointment_status", "appointment_provider_id",
            "appointment_start_at", "appointment_last_checked_at")),
    }


def test_appointments_reconcile__fixed_data_gives_exact_result(acme, provider_server):
    """Hot then warm leads are checked; a booking completes follow-ups, a cancellation makes a
    task, a move is rescheduled; every checked lead is stamped."""
    assert run() == expected()

    assert [r.query["email"] for r in provider_server.requests] == [
        "booked@acme.test", "quiet@acme.test", "cancels@acme.test", "moves@acme.test"]
    booked = Lead.objects.get(email="booked@acme.test")
    assert (booked.status, booked.appointment_status, booked.appointment_provider_id,
            booked.appointment_start_at) == (LeadStatus.MEETING_BOOKED, "booked", "A1",
                                             datetime(2026, 3, 4, 14, tzinfo=UTC))
    assert set(booked.follow_ups.values_list("status", flat=True)) == {FollowUpStatus.COMPLETED}
    (task,) = FollowUpTask.objects.all()
    assert (task.kind, task.lead.email, task.appointment.provider_id, task.due_at) == (
        "meeting-canceled", "cancels@acme.test", "B1", NOW)
    assert task.body == ("cancels@acme.test canceled the meeting of 2026-03-03 14:00 UTC: "
                         "reach out to find a new time.")
    b1 = Appointment.objects.get(provider_id="B1")
    assert (b1.status, b1.canceled_at) == ("canceled", NOW)
    assert Appointment.objects.get(provider_id="C1").start_at == datetime(2026, 3, 6, 15,
                                                                          tzinfo=UTC)
    stamped = set(Lead.objects.filter(appointment_last_checked_at=NOW).values_list("email",
                                                                                  flat=True))
    assert stamped == {"booked@acme.test", "quiet@acme.test", "cancels@acme.test",
                       "moves@acme.test"}


def test_appointments_reconcile__second_run_changes_nothing(acme, provider_server):
    """At the same time nothing is due again; days later every lead is checked again and the
    same provider data changes no appointment, task or follow-up."""
    run()
    before = snapshot()
    assert run() == expected(checked=0, hotChecked=0, warmChecked=0, booked=0, canceled=0,
                             rescheduled=0, followUpsCompleted=0, tasksCreated=0)
    assert snapshot() == before

    later = run(now=NOW + timedelta(days=8))

    assert later == expected(checked=5, hotChecked=2, warmChecked=3, booked=0, canceled=0,
                             rescheduled=0, followUpsCompleted=0, tasksCreated=0)
    after = snapshot()
    assert {name: after[name] for name in ("appointments", "tasks", "followUps")} == {
        name: before[name] for name in ("appointments", "tasks", "followUps")}


def test_appointments_reconcile__dry_run_writes_nothing(acme, provider_server):
    """dryRun counts what would change and writes no row, not even the stamps."""
    before = snapshot()
    assert run(dry_run=True) == expected(dryRun=True)
    assert snapshot() == before
    assert {r.method for r in provider_server.requests} == {"GET"}


def test_appointments_reconcile__client_id_and_limits(acme, provider_server):
    """clientId checks that client only; leadsPerWorkspace bounds the checks, hot first."""
    assert run(client_id=acme.pk, leads_per_workspace=3) == expected(
        workspaces=1, workspacesNotConfigured=0, checked=3, warmChecked=1, rescheduled=0)
    assert run(workspace_limit=1, client_id=Client.objects.get(name="nourl").pk) == expected(
        workspaces=1, workspacesNotConfigured=1, checked=0, hotChecked=0, warmChecked=0,
        booked=0, canceled=0, rescheduled=0, followUpsCompleted=0, tasksCreated=0)


def test_appointments_reconcile__provider_errors_are_counted(db, provider_server, settings):
    """Timeout, 429, 500 and malformed JSON between good answers: counted, the run goes on, and
    every lead is stamped."""
    settings.PROVIDER_TIMEOUT_SECONDS = 0.5
    settings.PROVIDER_BACKOFF_BASE_SECONDS = 0.01
    client = booking_client(provider_server, "acme")
    failures = [Reply(200, {}, delay_seconds=2), Reply(429, {}, {"Retry-After": "0"}),
                Reply(500), Reply(200, b"not json")]
    by_email = {}
    for index in range(8):  # good, bad, good, bad...: never more than half failed
        email = f"lead{index}@acme.test"
        hot_lead(client, email)
        by_email[email] = failures[index // 2] if index % 2 else []
    provider_server.script("GET", "/acme/appointments", answers(by_email))

    result = run()

    assert {k: result[k] for k in ("checked", "errors", "errorsByKind",
                                   "circuitBreakerTripped")} == {
        "checked": 8, "errors": 4, "circuitBreakerTripped": False,
        "errorsByKind": {"timeout": 1, "rateLimited": 1, "serverError": 1, "badResponse": 1}}
    assert Lead.objects.filter(appointment_last_checked_at=NOW).count() == 8


def test_appointments_reconcile__circuit_breaker_trips_past_half(db, provider_server):
    """Three failures in the first five checks (60 %): the run stops at five and says so."""
    client = booking_client(provider_server, "acme")
    by_email = {}
    for index in range(8):
        email = f"lead{index}@acme.test"
        hot_lead(client, email)
        by_email[email] = Reply(404) if index < 3 else []
    provider_server.script("GET", "/acme/appointments", answers(by_email))

    result = run()

    assert {k: result[k] for k in ("checked", "errors", "circuitBreakerTripped",
                                   "finishedWithinBudget")} == {
        "checked": 5, "errors": 3, "circuitBreakerTripped": True, "finishedWithinBudget": True}
    assert len(provider_server.requests) == 5


def test_appointments_reconcile__half_failed_does_not_trip(db, provider_server):
    """Exactly half failed after six checks is not past half: every lead is checked."""
    client = booking_client(provider_server, "acme")
    by_email = {}
    for index in range(6):
        email = f"lead{index}@acme.test"
        hot_lead(client, email)
        by_email[email] = Reply(404) if index % 2 else []
    provider_server.script("GET", "/acme/appointments", answers(by_email))

    result = run()

    assert (result["checked"], result["errors"], result["circuitBreakerTripped"]) == (6, 3, False)


def test_appointments_reconcile__slow_provider_stops_within_budget(db, provider_server,
                                                                  settings):
    """A provider slower than the budget: the run stops near it and says so."""
    settings.APPOINTMENT_RECONCILE_TIME_BUDGET_SECONDS = 1
    client = booking_client(provider_server, "acme")
    for index in range(3):
        hot_lead(client, f"lead{index}@acme.test")
    provider_server.script("GET", "/acme/appointments",
                           Reply(200, {"appointments": []}, delay_seconds=5))
    started = time.monotonic()

    result = run()

    assert time.monotonic() - started < 2.5
    assert (result["checked"], result["errorsByKind"], result["finishedWithinBudget"]) == (
        1, {"timeout": 1}, False)
