"""The EMAIL_SENT hot path: a few single statements per event instead of re-aggregating.

An outbound email only moves the lead's outbound rollups forward, so one ``UPDATE`` with
``CASE`` (a portable GREATEST) applies it against the row's latest committed values: the result
is the maximum whatever order events arrive in, and a concurrent reply's re-aggregation under
the row lock (services.lead_refresh) cannot be undone by it. The same statement fills blank
names and says whether a sequence paused for the lead's reply may resume, so a lead with
nothing paused costs no follow-up query. The message is one ``INSERT ... ON CONFLICT DO
NOTHING``; a repeat (retry, requeue) takes the exact path: lead_refresh from the messages.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db import connection

from jobs.models import Client, Direction, FollowUpInstance, FollowUpStatus, Lead, PauseReason


@dataclass(frozen=True)
class OutboundTouch:
    lead_id: int
    resume_due: bool  # a follow-up is paused for lead_replied and this email is newer than it


def _touch_sql(where: str) -> str:
    quote = connection.ops.quote_name
    lead = quote(Lead._meta.db_table)
    follow_ups = quote(FollowUpInstance._meta.db_table)
    newer = "{column} IS NULL OR {column} < %(at)s"
    last_message = newer.format(column="last_message_at")
    return (
        f"UPDATE {lead} SET "
        f"last_outbound_at = CASE WHEN {newer.format(column='last_outbound_at')} "
        f"THEN %(at)s ELSE last_outbound_at END, "
        f"last_message_direction = CASE WHEN {last_message} "
        f"THEN %(outbound)s ELSE last_message_direction END, "
        f"last_message_at = CASE WHEN {last_message} THEN %(at)s ELSE last_message_at END, "
        "first_name = CASE WHEN first_name = '' THEN %(first_name)s ELSE first_name END, "
        "last_name = CASE WHEN last_name = '' THEN %(last_name)s ELSE last_name END, "
        "emailbison_lead_id = CASE WHEN emailbison_lead_id = '' THEN %(lead_id)s "
        "ELSE emailbison_lead_id END "
        f"WHERE {where} "
        f"RETURNING id, ({newer.format(column='last_inbound_at')}) AND EXISTS ("
        f"SELECT 1 FROM {follow_ups} AS f WHERE f.lead_id = {lead}.id "
        "AND f.status = %(paused)s AND f.pause_reason = %(lead_replied)s)"
    )


def lead_outbound_touch(*, client: Client, email: str, sent_at: datetime,
                        first_name: str = "", last_name: str = "",
                        emailbison_lead_id: str = "", lead_pk: int | None = None
                        ) -> OutboundTouch | None:
    """Apply an outbound email at ``sent_at`` to the client's lead with this email (any case),
    or to ``lead_pk``; the row stays locked until commit. None when there is no such lead."""
    params = {
        "at": Lead._meta.get_field("last_outbound_at").get_db_prep_value(sent_at, connection),
        "outbound": Direction.OUTBOUND, "first_name": first_name, "last_name": last_name,
        "lead_id": emailbison_lead_id, "paused": FollowUpStatus.PAUSED,
        "lead_replied": PauseReason.LEAD_REPLIED, "client": client.pk, "email": email,
        "pk": lead_pk,
    }
    where = ("id = %(pk)s" if lead_pk is not None
             else "LOWER(email) = LOWER(%(email)s) AND client_id = %(client)s")
    with connection.cursor() as cursor:
        cursor.execute(_touch_sql(where), params)
        row = cursor.fetchone()
    return OutboundTouch(lead_id=row[0], resume_due=bool(row[1])) if row else None
