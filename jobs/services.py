"""Writes to the outreach data, each idempotent on the provider's ids.

For replies and blacklisting, rollups, sentiment and status are recomputed from the lead's
messages rather than bumped, so the result does not depend on the order events arrive in; the
lead's row is locked first, so two drainers touching one lead take turns and each sees the
other's messages. An outbound email only moves rollups forward (jobs/outbound.py).
"""

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Count, Max, Q, Value
from django.db.models.functions import Lower

from jobs.models import (
    Client,
    Direction,
    EmailCampaign,
    FollowUpInstance,
    FollowUpStatus,
    FollowUpStep,
    Lead,
    LeadStatus,
    Message,
    PauseReason,
    Sentiment,
)

STATUS_RANK = {LeadStatus.NEW: 0, LeadStatus.REPLIED: 1, LeadStatus.INTERESTED: 2,
               LeadStatus.MEETING_BOOKED: 3}
SENTIMENT_RANK = {"": 0, Sentiment.NEUTRAL: 1, Sentiment.INTERESTED: 2, Sentiment.BLACKLIST: 3}


def leads_by_email(*, client: Client, email: str):
    """The client's lead with this email, any case, through the (lower(email), client) index
    (``email__iexact`` compares UPPER() and cannot use it)."""
    return Lead.objects.alias(email_lower=Lower("email")).filter(
        client=client, email_lower=Lower(Value(email)))


def campaign_upsert(*, client: Client, bison_campaign_id: str, name: str) -> EmailCampaign:
    """The client's campaign, created once, its name kept current."""
    campaign, created = EmailCampaign.objects.get_or_create(
        client=client, bison_campaign_id=bison_campaign_id, defaults={"name": name})
    if not created and name and campaign.name != name:
        campaign.name = name
        campaign.save(update_fields=["name"])
    return campaign


def lead_find_or_create_locked(*, client: Client, email: str, first_name: str = "",
                               last_name: str = "", emailbison_lead_id: str = "") -> Lead:
    """The client's lead with this email (any case), created if new, locked for this
    transaction; blank names and provider id are filled in, never overwritten."""
    lead = leads_by_email(client=client, email=email).select_for_update().first()
    if lead is None:
        created, _ = Lead.objects.get_or_create(
            client=client, email__iexact=email,
            defaults={"email": email, "first_name": first_name, "last_name": last_name,
                      "emailbison_lead_id": emailbison_lead_id})
        lead = Lead.objects.select_for_update().get(pk=created.pk)
    given = {"first_name": first_name, "last_name": last_name,
             "emailbison_lead_id": emailbison_lead_id}
    changed = [name for name, value in given.items() if value and not getattr(lead, name)]
    for name in changed:
        setattr(lead, name, given[name])
    if changed:
        lead.save(update_fields=changed)
    return lead


def message_record(*, lead: Lead, provider_field: str, provider_id: str,
                   values: dict) -> tuple[Message, bool]:
    """The message with this provider id, created once (the unique provider id decides). A
    repeat merges only the sentiment upward (a LEAD_INTERESTED after its LEAD_REPLIED marks the
    same reply interested)."""
    try:
        with transaction.atomic():
            return Message.objects.create(lead=lead, **values,
                                          **{provider_field: provider_id}), True
    except IntegrityError:
        pass
    message = Message.objects.get(**{provider_field: provider_id})
    sentiment = values.get("sentiment", "")
    if SENTIMENT_RANK[sentiment] > SENTIMENT_RANK[message.sentiment]:
        message.sentiment = sentiment
        message.save(update_fields=["sentiment"])
    return message, False


def lead_refresh(*, lead: Lead, blacklist: bool = False) -> Lead:
    """Recompute rollups, sentiment and status from the lead's messages.

    Rollups: the latest inbound and outbound times; the latest message's direction (inbound
    on a tie). Sentiment: Blacklist once any reply asked to stop, else the latest reply's.
    Status: blacklisted is final; otherwise it only moves up (new < replied < interested <
    meeting-booked)."""
    inbound = Q(direction=Direction.INBOUND)
    facts = lead.messages.aggregate(
        last_in=Max("sent_at", filter=inbound),
        last_out=Max("sent_at", filter=Q(direction=Direction.OUTBOUND)),
        replies=Count("pk", filter=inbound),
        interested=Count("pk", filter=inbound & Q(sentiment=Sentiment.INTERESTED)),
        opted_out=Count("pk", filter=inbound & Q(sentiment=Sentiment.BLACKLIST)),
    )
    last_in, last_out = facts["last_in"], facts["last_out"]
    lead.last_inbound_at, lead.last_outbound_at = last_in, last_out
    lead.last_message_at = max((t for t in (last_in, last_out) if t), default=None)
    if lead.last_message_at:
        lead.last_message_direction = (Direction.INBOUND if lead.last_message_at == last_in
                                       else Direction.OUTBOUND)
    blacklist = blacklist or lead.status == LeadStatus.BLACKLISTED or facts["opted_out"] > 0
    if blacklist:
        lead.sentiment, lead.status = Sentiment.BLACKLIST, LeadStatus.BLACKLISTED
    else:
        if facts["replies"]:
            lead.sentiment = lead.messages.filter(inbound).order_by(
                "-sent_at", "sentiment").values_list("sentiment", flat=True)[0]
        implied = (LeadStatus.INTERESTED if facts["interested"] else
                   LeadStatus.REPLIED if facts["replies"] else LeadStatus.NEW)
        lead.status = max(lead.status, implied, key=lambda status: STATUS_RANK[status])
    lead.save(update_fields=["last_inbound_at", "last_outbound_at", "last_message_at",
                             "last_message_direction", "sentiment", "status"])
    return lead


def follow_ups_pause_for_reply(*, lead: Lead, replied_at: datetime, now: datetime) -> int:
    """Active follow-ups pause (``lead_replied``) unless we have written since the reply."""
    if lead.last_outbound_at and lead.last_outbound_at > replied_at:
        return 0
    return lead.follow_ups.filter(status=FollowUpStatus.ACTIVE).update(
        status=FollowUpStatus.PAUSED, pause_reason=PauseReason.LEAD_REPLIED, paused_at=now)


def follow_ups_resume_after_outbound(*, lead: Lead, sent_at: datetime, now: datetime) -> int:
    """Follow-ups paused for ``lead_replied`` resume from their next step, when this outbound
    email is newer than the lead's last reply (an older one arriving late changes nothing)."""
    if lead.last_inbound_at and sent_at <= lead.last_inbound_at:
        return 0
    return follow_ups_resume(lead_id=lead.pk, now=now)


def follow_ups_resume(*, lead_id: int, now: datetime) -> int:
    """The lead's follow-ups paused for ``lead_replied`` resume from their next step."""
    resumed = 0
    paused = FollowUpInstance.objects.filter(lead_id=lead_id, status=FollowUpStatus.PAUSED,
                                             pause_reason=PauseReason.LEAD_REPLIED)
    for instance in paused.select_for_update():
        instance.current_step += 1
        step = FollowUpStep.objects.filter(sequence_id=instance.sequence_id,
                                           order=instance.current_step).first()
        instance.status = FollowUpStatus.ACTIVE if step else FollowUpStatus.COMPLETED
        instance.next_step_due_at = now + timedelta(hours=step.delay_hours) if step else None
        instance.pause_reason, instance.paused_at = "", None
        instance.save()
        resumed += 1
    return resumed


def follow_ups_stop(*, lead: Lead, now: datetime) -> int:
    """A blacklisted lead's follow-ups stop for good (paused, reason ``blacklisted``)."""
    return FollowUpInstance.objects.filter(lead=lead).exclude(
        status=FollowUpStatus.COMPLETED).exclude(pause_reason=PauseReason.BLACKLISTED).update(
        status=FollowUpStatus.PAUSED, pause_reason=PauseReason.BLACKLISTED, paused_at=now)
