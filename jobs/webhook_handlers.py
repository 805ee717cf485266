"""The seven email webhook handlers (DOMAIN.md "What the webhook events do"), one mapping from
type to handler, registered into the webhooks registry from jobs/registration.py.

Each is idempotent on provider ids and independent of delivery order; all provider text is
cleaned before it reaches a column. Missing ids are terminal (MissingProviderField); an unknown
workspace is retried (UnknownWorkspace), since its Client may be created later.
"""

import re
from datetime import datetime

from django.utils import timezone

from jobs import outbound, services
from jobs.exceptions import MissingProviderField, UnknownWorkspace
from jobs.models import Client, Direction, Lead, Message, MessageSource, Sentiment
from jobs.selectors import client_by_workspace, lead_by_email
from webhooks.dates import provider_datetime
from webhooks.parsing import provider_id, provider_id_column, section
from webhooks.registry import EventContext
from webhooks.text import clean_text

OPT_OUT = re.compile(r"\b(unsubscribe|opt[ -]?out|remove me|stop (e-?mailing|contacting)|"
                     r"do not (contact|email)|don'?t (contact|email)|take me off)\b", re.I)
BOUNCE_NOTICE = re.compile(r"(mailer-daemon|postmaster@|undeliverable|delivery status "
                           r"notification|mail delivery (failed|subsystem)|address not found|"
                           r"delivery has failed)", re.I)


def _text(value, max_chars: int | None = None) -> str:
    return clean_text(value, max_chars=max_chars).strip()


ID_MAX_CHARS = 64  # the provider id columns (Message, EmailCampaign, Lead)


def provider_time(value, *, field: str, fallback: datetime | None) -> datetime | None:
    """A provider time (webhooks.dates: checked at ingest; one stored before that check fails
    at once as terminal), else ``fallback`` when not given."""
    return provider_datetime(value, field=field) or fallback


def column_id(value) -> str:
    """A provider id for our id columns: whole when it fits, else hashed whole, never cut."""
    return provider_id_column(value, max_chars=ID_MAX_CHARS)


def _client(event: EventContext) -> Client:
    workspace_id = provider_id(section(event.payload, "event").get("workspace_id"))
    if not workspace_id:
        raise MissingProviderField(f"{event.event_type} without event.workspace_id")
    client = client_by_workspace(workspace_id=workspace_id)
    if client is None:
        raise UnknownWorkspace(f"no Client has emailbison_workspace_id={workspace_id!r} yet")
    return client


def _lead_fields(event: EventContext) -> dict:
    """The lead's email (lower case) and the names and id to fill in where blank."""
    data = section(event.payload, "data")
    lead = section(data, "lead")
    email = _text(lead.get("email") or section(data, "reply").get("from_email_address"), 254)
    if not email:
        raise MissingProviderField(f"{event.event_type} without data.lead.email")
    return {"email": email.lower(), "first_name": _text(lead.get("first_name"), 200),
            "last_name": _text(lead.get("last_name"), 200),
            "emailbison_lead_id": column_id(lead.get("id"))}


def _lead(event: EventContext, client: Client) -> Lead:
    return services.lead_find_or_create_locked(client=client, **_lead_fields(event))


def _campaign(event: EventContext, client: Client):
    campaign = section(event.payload, "data", "campaign")
    campaign_id = column_id(campaign.get("id"))
    if not campaign_id:
        return None
    return services.campaign_upsert(client=client, bison_campaign_id=campaign_id,
                                    name=_text(campaign.get("name"), 255))


def produced(lead: Lead | None, message: Message | None = None, **extra) -> dict:
    links = {}
    if lead is not None:
        links["lead"] = f"jobs.lead:{lead.pk}"
    if message is not None:
        links["message"] = f"jobs.message:{message.pk}"
    return {"produced": links, **extra}


def handle_email_sent(*, event: EventContext) -> dict:
    """Outbound campaign message once per scheduled email id; rollups moved forward; a sequence
    paused for ``lead_replied`` resumes when this email is newer than the reply. A repeat
    re-applies the rollups from the lead's messages."""
    scheduled = section(event.payload, "data", "scheduled_email")
    scheduled_id = column_id(scheduled.get("id"))
    if not provider_id(scheduled.get("id")):
        raise MissingProviderField("EMAIL_SENT without data.scheduled_email.id")
    client = _client(event)
    campaign = _campaign(event, client)
    fields = _lead_fields(event)
    sent_at = provider_time(scheduled.get("sent_at"), field="data.scheduled_email.sent_at",
                            fallback=event.received_at)
    touch = outbound.lead_outbound_touch(client=client, sent_at=sent_at, **fields)
    if touch is None:  # a new lead
        lead = services.lead_find_or_create_locked(client=client, **fields)
        touch = outbound.lead_outbound_touch(client=client, sent_at=sent_at, lead_pk=lead.pk,
                                             **fields)
    lead = Lead(pk=touch.lead_id, client=client)
    message, created = services.message_record(
        lead=lead, provider_field="inboxxia_scheduled_email_id", provider_id=scheduled_id,
        values={"campaign": campaign, "direction": Direction.OUTBOUND,
                "source": MessageSource.CAMPAIGN, "sent_at": sent_at,
                "subject": _text(scheduled.get("email_subject"), 998),
                "body": _text(scheduled.get("email_body"))})
    resumed = 0
    if not created:
        services.lead_refresh(lead=Lead.objects.get(pk=touch.lead_id))
    elif touch.resume_due:
        resumed = services.follow_ups_resume(lead_id=touch.lead_id, now=timezone.now())
    return produced(lead, message, created=created, resumed=resumed)


def reply_sentiment(event: EventContext, reply: dict, text: str) -> str:
    if OPT_OUT.search(text) or is_bounce_notice(reply, text):
        return Sentiment.BLACKLIST
    if event.event_type == "LEAD_INTERESTED" or reply.get("interested") is True:
        return Sentiment.INTERESTED
    return Sentiment.NEUTRAL


def is_bounce_notice(reply: dict, text: str) -> bool:
    sender = _text(reply.get("from_email_address"))
    subject = _text(reply.get("email_subject"))
    return bool(BOUNCE_NOTICE.search(sender) or BOUNCE_NOTICE.search(subject)
                or BOUNCE_NOTICE.search(text[:500]))


def handle_reply(*, event: EventContext) -> dict:
    """LEAD_REPLIED, LEAD_INTERESTED, UNTRACKED_REPLY_RECEIVED: inbound message once per reply
    id, sentiment, lead status, and active follow-ups paused (or stopped on an opt-out)."""
    reply = section(event.payload, "data", "reply")
    reply_id = column_id(reply.get("id"))
    if not provider_id(reply.get("id")):
        raise MissingProviderField(f"{event.event_type} without data.reply.id")
    client = _client(event)
    campaign = _campaign(event, client)
    lead = _lead(event, client)
    text = _text(reply.get("text_body") or reply.get("html_body"))
    sentiment = reply_sentiment(event, reply, text)
    replied_at = (provider_time(reply.get("date_received"), field="data.reply.date_received",
                                fallback=None)
                  or provider_time(reply.get("created_at"), field="data.reply.created_at",
                                   fallback=event.received_at))
    source = MessageSource.BOUNCE if is_bounce_notice(reply, text) else MessageSource.LEAD
    message, created = services.message_record(
        lead=lead, provider_field="emailbison_reply_id", provider_id=reply_id,
        values={"campaign": campaign, "direction": Direction.INBOUND, "source": source,
                "sentiment": sentiment, "sent_at": replied_at, "body": text,
                "subject": _text(reply.get("email_subject"), 998)})
    blacklisted = sentiment == Sentiment.BLACKLIST
    services.lead_refresh(lead=lead, blacklist=blacklisted)
    now = timezone.now()
    if blacklisted:
        services.follow_ups_stop(lead=lead, now=now)
    elif created:
        services.follow_ups_pause_for_reply(lead=lead, replied_at=replied_at, now=now)
    return produced(lead, message, created=created, sentiment=sentiment)


def handle_blacklisting(*, event: EventContext) -> dict:
    """EMAIL_BOUNCED, LEAD_UNSUBSCRIBED: the lead is blacklisted and its follow-ups stop."""
    client = _client(event)
    lead = _lead(event, client)
    services.lead_refresh(lead=lead, blacklist=True)
    stopped = services.follow_ups_stop(lead=lead, now=timezone.now())
    return produced(lead, stopped=stopped)


def handle_email_opened(*, event: EventContext) -> dict:
    """EMAIL_OPENED: the stored event is the record; nothing else changes."""
    workspace_id = provider_id(section(event.payload, "event").get("workspace_id"))
    client = client_by_workspace(workspace_id=workspace_id) if workspace_id else None
    email = _text(section(event.payload, "data", "lead").get("email"), 254)
    lead = lead_by_email(client=client, email=email) if client and email else None
    return produced(lead, recorded=True)


HANDLERS = {
    "EMAIL_SENT": handle_email_sent,
    "LEAD_REPLIED": handle_reply,
    "LEAD_INTERESTED": handle_reply,
    "UNTRACKED_REPLY_RECEIVED": handle_reply,
    "EMAIL_OPENED": handle_email_opened,
    "EMAIL_BOUNCED": handle_blacklisting,
    "LEAD_UNSUBSCRIBED": handle_blacklisting,
}
