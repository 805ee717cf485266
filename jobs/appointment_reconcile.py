"""The ``appointment-reconcile`` cron's work: bring each lead's appointments in line with the
booking provider.

Per client with a booking provider (``clientId`` alone if given; at most ``workspaceLimit``
clients, by id; one without a base URL or key, or with a provider this service cannot speak, is
counted in ``workspacesNotConfigured``), at most ``leadsPerWorkspace`` leads: hot ones first
(an active follow-up, not checked in the last minute), then warm ones (replied at some time, not
checked in ``staleDays``), the longest unchecked first.

For each lead the provider's appointments are upserted by provider id. A new booking (an id
first seen booked, or a canceled one booked again) completes the lead's follow-ups and marks the
lead ``meeting-booked``; a new cancellation (a booked one now canceled, or one first seen
canceled whose start is still ahead) creates a ``meeting-canceled`` FollowUpTask, once per
appointment; a moved start or end is ``rescheduled``. The lead's appointment fields show its next
booked appointment (else its latest one) and ``appointment_last_checked_at`` is stamped, even
when the provider failed, so a failing lead waits its turn like the others.

Circuit breaker: once at least five leads were checked and more than half of the checks failed,
the run stops (``circuitBreakerTripped``). ``dryRun`` asks the provider and counts what would
change, and writes nothing. The run stops starting checks when its time budget is spent.
"""

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q

from jobs import conf
from jobs.models import (
    Appointment,
    AppointmentStatus,
    Client,
    FollowUpInstance,
    FollowUpStatus,
    FollowUpTask,
    FollowUpTaskKind,
    Lead,
    LeadStatus,
)
from jobs.providers.base import Deadline
from jobs.providers.booking import SUPPORTED_PROVIDERS, BookedAppointment, BookingClient
from jobs.providers.exceptions import ProviderBudgetExhausted, ProviderError
from jobs.services import STATUS_RANK

COUNTERS = ("workspaces", "workspacesNotConfigured", "checked", "hotChecked", "warmChecked",
            "errors", "booked", "canceled", "rescheduled", "followUpsCompleted", "tasksCreated")


class _Stop(Exception):
    """Stop the run: its budget is spent or the breaker tripped."""


@dataclass
class _Plan:
    """What one lead's check changes: rows to write and what they mean."""

    upserts: list[tuple[Appointment | None, BookedAppointment]] = field(default_factory=list)
    new_bookings: int = 0
    new_cancellations: list[str] = field(default_factory=list)  # provider ids
    rescheduled: int = 0


def appointments_reconcile(*, now: datetime, workspace_limit: int, leads_per_workspace: int,
                           stale_days: int, client_id: int | None, dry_run: bool) -> dict:
    started = time.monotonic()
    deadline = Deadline.after(conf.reconcile_time_budget_seconds())
    result = {"dryRun": dry_run, **dict.fromkeys(COUNTERS, 0), "errorsByKind": {},
              "circuitBreakerTripped": False}
    clients = Client.objects.exclude(booking_provider="").order_by("pk")
    if client_id is not None:
        clients = clients.filter(pk=client_id)
    within = True
    try:
        for client in clients[:workspace_limit]:
            result["workspaces"] += 1
            if client.booking_provider not in SUPPORTED_PROVIDERS or not (
                    client.booking_base_url.strip() and client.booking_api_key.strip()):
                result["workspacesNotConfigured"] += 1
                continue
            leads = leads_to_check(client=client, now=now, limit=leads_per_workspace,
                                   stale_days=stale_days)
            with BookingClient.for_client(client) as booking:
                for lead, temperature in leads:
                    _check(booking, lead, temperature, result, now=now, deadline=deadline,
                           dry_run=dry_run)
    except _Stop:
        within = not deadline.passed()
    result["finishedWithinBudget"] = within and not deadline.passed()
    result["durationMs"] = int((time.monotonic() - started) * 1000)
    return result


def leads_to_check(*, client: Client, now: datetime, limit: int,
                   stale_days: int) -> list[tuple[Lead, str]]:
    """Hot leads, then warm ones, ``limit`` in all, each the longest unchecked first."""
    active = Exists(FollowUpInstance.objects.filter(lead=OuterRef("pk"),
                                                    status=FollowUpStatus.ACTIVE))
    longest_unchecked = (F("appointment_last_checked_at").asc(nulls_first=True), "pk")
    leads = Lead.objects.filter(client=client).exclude(status=LeadStatus.BLACKLISTED)
    hot = list(leads.filter(active).filter(
        Q(appointment_last_checked_at__isnull=True)
        | Q(appointment_last_checked_at__lt=now - conf.RECONCILE_HOT_RECHECK),
    ).order_by(*longest_unchecked)[:limit])
    warm = [] if len(hot) >= limit else list(leads.filter(last_inbound_at__isnull=False).filter(
        Q(appointment_last_checked_at__isnull=True)
        | Q(appointment_last_checked_at__lt=now - timedelta(days=stale_days)),
    ).exclude(pk__in=[lead.pk for lead in hot]).order_by(*longest_unchecked)
        [:limit - len(hot)])
    return [(lead, "hot") for lead in hot] + [(lead, "warm") for lead in warm]


def _check(booking: BookingClient, lead: Lead, temperature: str, result: dict, *,
           now: datetime, deadline: Deadline, dry_run: bool) -> None:
    if deadline.passed():
        raise _Stop
    try:
        found = booking.appointments(email=lead.email, deadline=deadline)
    except ProviderBudgetExhausted:
        raise _Stop from None
    except ProviderError as error:
        found = error
    result["checked"] += 1
    result[f"{temperature}Checked"] += 1
    if isinstance(found, ProviderError):
        result["errors"] += 1
        result["errorsByKind"][found.kind] = result["errorsByKind"].get(found.kind, 0) + 1
        if not dry_run:
            Lead.objects.filter(pk=lead.pk).update(appointment_last_checked_at=now)
    else:
        plan = _plan(lead, found, now=now)
        result["booked"] += plan.new_bookings
        result["canceled"] += len(plan.new_cancellations)
        result["rescheduled"] += plan.rescheduled
        if dry_run:
            if plan.new_bookings:
                result["followUpsCompleted"] += FollowUpInstance.objects.filter(
                    lead=lead).exclude(status=FollowUpStatus.COMPLETED).count()
            result["tasksCreated"] += len(plan.new_cancellations)
        else:
            completed, tasks = _apply(lead, found, plan, now=now)
            result["followUpsCompleted"] += completed
            result["tasksCreated"] += tasks
    checked, errors = result["checked"], result["errors"]
    if (checked >= conf.RECONCILE_BREAKER_MIN_CHECKS
            and errors > checked * conf.RECONCILE_BREAKER_ERROR_RATE):
        result["circuitBreakerTripped"] = True
        raise _Stop


def _plan(lead: Lead, found: list[BookedAppointment], *, now: datetime) -> _Plan:
    known = {row.provider_id: row for row in
             Appointment.objects.filter(provider_id__in=[a.provider_id for a in found])}
    plan = _Plan()
    for seen in found:
        row = known.get(seen.provider_id)
        if row is not None and row.lead_id != lead.pk:
            continue  # another lead's appointment (the provider reused an email): leave it
        booked = seen.status == AppointmentStatus.BOOKED
        if row is None:
            plan.new_bookings += booked
            if not booked and seen.start_at > now:
                plan.new_cancellations.append(seen.provider_id)
        elif row.status != seen.status:
            plan.new_bookings += booked
            if not booked:
                plan.new_cancellations.append(seen.provider_id)
        elif (row.start_at, row.end_at) == (seen.start_at, seen.end_at):
            continue
        else:
            plan.rescheduled += 1
        plan.upserts.append((row, seen))
    return plan


def _apply(lead: Lead, found: list[BookedAppointment], plan: _Plan, *,
           now: datetime) -> tuple[int, int]:
    """Write the plan and the lead's appointment fields; (follow-ups completed, tasks made)."""
    completed = tasks = 0
    with transaction.atomic():
        for row, seen in plan.upserts:
            values = {"lead": lead, "status": seen.status, "start_at": seen.start_at,
                      "end_at": seen.end_at, "updated_at": now,
                      "canceled_at": (row.canceled_at if row and row.canceled_at else now)
                      if seen.status == AppointmentStatus.CANCELED else None}
            appointment, _ = Appointment.objects.update_or_create(
                provider_id=seen.provider_id, defaults=values,
                create_defaults={**values, "created_at": now})
            if seen.provider_id in plan.new_cancellations:
                _, made = FollowUpTask.objects.get_or_create(
                    kind=FollowUpTaskKind.MEETING_CANCELED, appointment=appointment,
                    defaults={"lead": lead, "due_at": now, "created_at": now,
                              "body": cancellation_note(lead, seen)})
                tasks += made
        if plan.new_bookings:
            completed = FollowUpInstance.objects.filter(lead=lead).exclude(
                status=FollowUpStatus.COMPLETED).update(
                status=FollowUpStatus.COMPLETED, next_step_due_at=None)
        _lead_appointment_fields(lead, found, now=now)
    return completed, tasks


def _lead_appointment_fields(lead: Lead, found: list[BookedAppointment], *,
                             now: datetime) -> None:
    booked = sorted((a for a in found if a.status == AppointmentStatus.BOOKED),
                    key=lambda a: a.start_at)
    upcoming = [a for a in booked if a.start_at >= now]
    shown = (upcoming or booked[-1:] or sorted(found, key=lambda a: a.start_at)[-1:] or [None])[0]
    values = {"appointment_last_checked_at": now}
    if shown is not None:
        values.update(appointment_status=shown.status, appointment_provider_id=shown.provider_id,
                      appointment_start_at=shown.start_at)
    if booked and lead.status != LeadStatus.BLACKLISTED:
        values["status"] = max(lead.status, LeadStatus.MEETING_BOOKED,
                               key=lambda status: STATUS_RANK[status])
    Lead.objects.filter(pk=lead.pk).update(**values)


def cancellation_note(lead: Lead, seen: BookedAppointment) -> str:
    who = " ".join(part for part in (lead.first_name, lead.last_name) if part) or lead.email
    return (f"{who} canceled the meeting of {seen.start_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC: "
            f"reach out to find a new time.")
