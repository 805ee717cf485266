"""``followups``: advance the follow-up sequences (DOMAIN.md), under a lock.

A run, in order:

1. ``completedBooked``: instances (active or paused) of leads with a booked meeting complete.
2. ``resumed``: instances paused for ``lead_replied`` whose lead has been quiet for
   ``quiet_days`` (no inbound message since) become active again, their current step due now.
3. For each due active instance, oldest due first, ``batch_size`` at a time:
   ``paused`` when the lead replied after our last outbound email (and within the quiet days);
   otherwise the step's ``FollowUpTask`` is created (``tasksCreated``; unique per instance and
   step, so a step is produced once) and the instance moves to its next step (``advanced``) or,
   after the last, completes (``completed``). An instance that cannot be processed (its step is
   missing, its template does not render) is left as it is and counted in ``errors``.

Each batch is one transaction of a fixed number of queries, its instances locked (FOR UPDATE
SKIP LOCKED on PostgreSQL) until it commits. ``exhausted`` says every due
instance was reached before the time budget ran out. Two runs never overlap: the run holds the
``followups`` lock (jobs.locks) and a run that finds it held does nothing and raises
``RunSkipped("locked")``: the ledger records it ``skipped``/``locked`` (so a queued run does not
use up its window's one success) and the route answers ``skipped: true, reason: "locked"``.
"""

import logging
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Case, DateTimeField, F, Q, Value, When

from jobs import conf
from jobs.inserts import rows_insert_new
from jobs.locks import cron_lock
from jobs.models import (
    AppointmentStatus,
    FollowUpInstance,
    FollowUpStatus,
    FollowUpStep,
    FollowUpTask,
    FollowUpTaskKind,
    Lead,
    LeadStatus,
    PauseReason,
)
from ledger.exceptions import RunSkipped
from ledger.models import RunReason

logger = logging.getLogger(__name__)

LOCK_NAME = "followups"
_OPEN = (FollowUpStatus.ACTIVE, FollowUpStatus.PAUSED)


@dataclass
class _Counts:
    completed_booked: int = 0
    resumed: int = 0
    paused: int = 0
    tasks_created: int = 0
    advanced: int = 0
    completed: int = 0
    errors: int = 0


def followups_run(*, now: datetime, batch_size: int = conf.FOLLOWUPS_BATCH_SIZE,
                  quiet_days: int = conf.FOLLOWUPS_QUIET_DAYS,
                  budget_seconds: float | None = None) -> dict:
    """One locked pass over the sequences (see the module doc)."""
    with cron_lock(LOCK_NAME, ttl_seconds=conf.followups_lock_seconds()) as acquired:
        if not acquired:
            logger.info("followups skipped: another run holds the lock",
                        extra={"action": "followups_locked"})
            raise RunSkipped(RunReason.LOCKED)
        return followups_advance(now=now, batch_size=batch_size, quiet_days=quiet_days,
                                 budget_seconds=budget_seconds)


def followups_advance(*, now: datetime, batch_size: int, quiet_days: int,
                      budget_seconds: float | None) -> dict:
    """The work of a run, without the lock (the caller holds it)."""
    started = time.monotonic()
    budget = conf.followups_budget_seconds() if budget_seconds is None else budget_seconds
    deadline = started + budget
    counts = _Counts()
    quiet_since = now - timedelta(days=quiet_days)
    counts.completed_booked = _complete_booked()
    counts.resumed = _resume_quiet(now=now, quiet_since=quiet_since)
    cursor: tuple[datetime, int] | None = None
    exhausted = False
    while time.monotonic() < deadline:
        with transaction.atomic():
            batch = _due_batch(now=now, after=cursor, size=batch_size)
            if batch:
                cursor = (batch[-1].next_step_due_at, batch[-1].pk)
                _advance_batch(batch, now=now, quiet_since=quiet_since, counts=counts)
        if len(batch) < batch_size:
            exhausted = True
            break
    result = {
        "completedBooked": counts.completed_booked,
        "resumed": counts.resumed,
        "paused": counts.paused,
        "tasksCreated": counts.tasks_created,
        "advanced": counts.advanced,
        "completed": counts.completed,
        "errors": counts.errors,
        "exhausted": exhausted,
        "durationMs": int((time.monotonic() - started) * 1000),
    }
    logger.info("followups advanced", extra={"action": "followups_advanced", **result})
    return result


def _complete_booked() -> int:
    booked = Q(lead__status=LeadStatus.MEETING_BOOKED) | Q(
        lead__appointments__status=AppointmentStatus.BOOKED)
    ids = FollowUpInstance.objects.filter(booked, status__in=_OPEN).values("pk")
    return FollowUpInstance.objects.filter(pk__in=ids, status__in=_OPEN).update(
        status=FollowUpStatus.COMPLETED, next_step_due_at=None, pause_reason="", paused_at=None)


def _resume_quiet(*, now: datetime, quiet_since: datetime) -> int:
    return FollowUpInstance.objects.filter(
        Q(lead__last_inbound_at__isnull=True) | Q(lead__last_inbound_at__lte=quiet_since),
        status=FollowUpStatus.PAUSED, pause_reason=PauseReason.LEAD_REPLIED,
        lead__auto_follow_up_enabled=True, lead__client__auto_follow_up_on_reply=True,
    ).update(status=FollowUpStatus.ACTIVE, pause_reason="", paused_at=None, next_step_due_at=now)


def _due_batch(*, now: datetime, after: tuple[datetime, int] | None,
               size: int) -> list[FollowUpInstance]:
    query = FollowUpInstance.objects.filter(
        status=FollowUpStatus.ACTIVE, next_step_due_at__lte=now,
        lead__auto_follow_up_enabled=True,
    ).exclude(lead__status=LeadStatus.BLACKLISTED)
    if after is not None:
        # The plain lower bound lets the (status, next_step_due_at) index start at the cursor.
        query = query.filter(Q(next_step_due_at__gt=after[0])
                             | Q(next_step_due_at=after[0], pk__gt=after[1]),
                             next_step_due_at__gte=after[0])
    # Locked until the batch commits, so a webhook's pause or resume of an instance waits for it
    # (or, when the webhook holds the row, the run passes it by until the next run).
    return list(query.select_related("lead").select_for_update(skip_locked=True, of=("self",))
                .order_by("next_step_due_at", "pk")[:size])


def _advance_batch(batch: list[FollowUpInstance], *, now: datetime, quiet_since: datetime,
                   counts: _Counts) -> None:
    steps = {(step.sequence_id, step.order): step for step in FollowUpStep.objects.filter(
        sequence_id__in={instance.sequence_id for instance in batch})}
    tasks, paused, completed = [], [], []
    advanced = defaultdict(list)  # next step's due time -> instances moving to that step
    for instance in batch:
        lead = instance.lead
        if _replied_since_outbound(lead, quiet_since):
            paused.append(instance.pk)
            continue
        step = steps.get((instance.sequence_id, instance.current_step))
        try:
            if step is None:
                raise LookupError(f"sequence {instance.sequence_id} has no step "
                                  f"{instance.current_step}")
            body = render_step(step.body_template, lead)
        except (LookupError, ValueError, AttributeError) as error:
            counts.errors += 1
            logger.warning("follow-up step not produced", extra={
                "action": "followups_step_failed", "instance_id": instance.pk,
                "error": str(error)})
            continue
        tasks.append(FollowUpTask(
            lead=lead, kind=FollowUpTaskKind.STEP, instance=instance,
            step_order=step.order, due_at=instance.next_step_due_at, body=body, created_at=now))
        following = steps.get((instance.sequence_id, step.order + 1))
        if following is None:
            completed.append(instance.pk)
        else:
            advanced[now + timedelta(hours=following.delay_hours)].append(instance.pk)
    # One task per (instance, step): a step produced before (a run that died after its insert)
    # is not produced twice, nor counted.
    counts.tasks_created += rows_insert_new(
        FollowUpTask, tasks, count_rows=FollowUpTask.objects.filter(
            instance__in=batch, kind=FollowUpTaskKind.STEP).count)
    if paused:
        counts.paused += FollowUpInstance.objects.filter(pk__in=paused).update(
            status=FollowUpStatus.PAUSED, pause_reason=PauseReason.LEAD_REPLIED, paused_at=now)
    if completed or advanced:
        _instances_move_on(completed, advanced)
        counts.completed += len(completed)
        counts.advanced += sum(len(ids) for ids in advanced.values())


def _instances_move_on(completed: list[int], advanced: dict[datetime, list[int]]) -> None:
    """One UPDATE for the batch's instances that produced their step: each moves to its next
    step, due at its time (a CASE with a branch per distinct due time), or completes."""
    status = (Case(When(pk__in=completed, then=Value(FollowUpStatus.COMPLETED)),
                   default=Value(FollowUpStatus.ACTIVE)) if completed and advanced
              else FollowUpStatus.COMPLETED if completed else FollowUpStatus.ACTIVE)
    due = Case(*[When(pk__in=ids, then=Value(at)) for at, ids in advanced.items()],
               default=None, output_field=DateTimeField()) if advanced else None
    moving = completed + [pk for ids in advanced.values() for pk in ids]
    FollowUpInstance.objects.filter(pk__in=moving).update(
        current_step=F("current_step") + 1, status=status, next_step_due_at=due)


def _replied_since_outbound(lead: Lead, quiet_since: datetime) -> bool:
    """The lead wrote after our last email, recently enough that we should wait for a person."""
    replied = lead.last_inbound_at
    if replied is None or replied <= quiet_since:
        return False
    return lead.last_outbound_at is None or replied > lead.last_outbound_at


class _Blank(dict):
    def __missing__(self, key):
        return ""


def render_step(template: str, lead: Lead) -> str:
    """A step's body for a lead: ``{first_name}``, ``{last_name}``, ``{email}`` filled, unknown
    names blank. A template that is not a valid format string raises ValueError."""
    return template.format_map(_Blank(first_name=lead.first_name, last_name=lead.last_name,
                                      email=lead.email))
