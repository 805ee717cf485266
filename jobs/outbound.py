"""The EMAIL_SENT path: an outbound email moves the lead's rollups forward in one UPDATE.

An outbound email only moves the lead's outbound rollups forward, so one ``UPDATE`` with
``Case``/``When`` (a portable GREATEST: SQLite's MAX() is NULL when any argument is) applies it
against the row's latest committed values: the result is the maximum whatever order events
arrive in, and a concurrent reply's re-aggregation under the row lock (services.lead_refresh)
cannot be undone by it. Blank names and the provider's lead id are filled, never overwritten.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Case, F, Q, Value, When

from jobs.models import Client, Direction, FollowUpInstance, FollowUpStatus, Lead, PauseReason
from jobs.services import leads_by_email


@dataclass(frozen=True)
class OutboundTouch:
    lead_id: int
    resume_due: bool  # a follow-up is paused for lead_replied and this email is newer than it


def _newer(column: str, at: datetime) -> Q:
    return Q(**{f"{column}__isnull": True}) | Q(**{f"{column}__lt": at})


def _moved_forward(column: str, value, *, when_older: str, at: datetime) -> Case:
    """``column`` set to ``value`` where ``when_older`` is older than ``at`` (or unset), else
    left as it is."""
    return Case(When(_newer(when_older, at), then=Value(value)), default=F(column),
                output_field=Lead._meta.get_field(column))


def _filled(column: str, value: str) -> Case:
    return Case(When(**{column: ""}, then=Value(value)), default=F(column))


def lead_outbound_touch(*, client: Client, email: str, sent_at: datetime,
                        first_name: str = "", last_name: str = "",
                        emailbison_lead_id: str = "", lead_pk: int | None = None
                        ) -> OutboundTouch | None:
    """Apply an outbound email at ``sent_at`` to the client's lead with this email (any case),
    or to ``lead_pk``; the row stays locked until commit. None when there is no such lead."""
    leads = Lead.objects.filter(pk=lead_pk) if lead_pk is not None else leads_by_email(
        client=client, email=email)
    found = leads.select_for_update().values_list("pk", "last_inbound_at").first()
    if found is None:
        return None
    lead_id, last_inbound_at = found
    Lead.objects.filter(pk=lead_id).update(
        last_outbound_at=_moved_forward("last_outbound_at", sent_at,
                                        when_older="last_outbound_at", at=sent_at),
        # Every assignment reads the row as it was: last_message_at is compared before it moves.
        last_message_direction=_moved_forward("last_message_direction", Direction.OUTBOUND,
                                              when_older="last_message_at", at=sent_at),
        last_message_at=_moved_forward("last_message_at", sent_at,
                                       when_older="last_message_at", at=sent_at),
        first_name=_filled("first_name", first_name),
        last_name=_filled("last_name", last_name),
        emailbison_lead_id=_filled("emailbison_lead_id", emailbison_lead_id),
    )
    resume_due = (last_inbound_at is None or last_inbound_at < sent_at) and \
        FollowUpInstance.objects.filter(lead_id=lead_id, status=FollowUpStatus.PAUSED,
                                        pause_reason=PauseReason.LEAD_REPLIED).exists()
    return OutboundTouch(lead_id=lead_id, resume_due=resume_due)
