"""Demo data (``manage.py seed_demo``): a few clients, campaigns, leads, messages and sequences
so that every cron has work to show in the admin. Idempotent: every row is found by its natural
key (workspace id, campaign id, lead email, provider message id, sequence name, step order,
lead and sequence) and only created when missing; a second seed changes nothing.

Times are relative to the first seed's ``now``: replies answered by a setter and by the AI
(response-timing), follow-ups due, replied, quiet and booked (followups), leads due their first
email (emailbison-availability-slot), hot and warm leads at the booking provider
(appointment-reconcile). Every provider base URL is ``provider_base_url``: the fake providers
``make run`` starts serve the EmailBison, availability and booking APIs on one port.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction

from jobs.models import (
    Client,
    Direction,
    EmailCampaign,
    FollowUpInstance,
    FollowUpSequence,
    FollowUpStatus,
    FollowUpStep,
    Lead,
    Message,
    MessageSource,
    PauseReason,
)
from jobs.services import lead_refresh

DEFAULT_PROVIDER_BASE_URL = "http://127.0.0.1:8765"
STEPS = [(0, "Hi {first_name}, would a short call next week help?"),
         (48, "Hi {first_name}, bumping this up in case it got buried."),
         (96, "Last note from me, {first_name}: happy to talk whenever suits.")]
MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)


@dataclass(frozen=True)
class DemoLead:
    email: str
    first_name: str
    bison_id: str
    # (direction, source, age): the lead's messages, ``age`` before the seed
    messages: tuple = ()
    # the follow-up instance: None (not enrolled), or (status, current step, due in, reason)
    follow_up: tuple | None = None
    first_email_in: timedelta | None = None  # the first campaign email is scheduled this soon


ACME_LEADS = [
    DemoLead("ada@example.com", "Ada", "5551",
             messages=(("outbound", "campaign", 3 * DAY),),
             follow_up=("active", 0, -10 * MINUTE, "")),
    DemoLead("grace@example.com", "Grace", "5552",
             messages=(("outbound", "campaign", 4 * DAY), ("inbound", "lead", 3 * DAY),
                       ("outbound", "setter", 3 * DAY - 25 * MINUTE),
                       ("inbound", "lead", 2 * DAY), ("outbound", "ai", 2 * DAY - 2 * MINUTE)),
             follow_up=("active", 1, -5 * MINUTE, "")),
    DemoLead("alan@example.com", "Alan", "5553",
             messages=(("outbound", "campaign", 5 * DAY), ("inbound", "lead", 4 * DAY),
                       ("outbound", "ai", 4 * DAY - MINUTE),
                       ("outbound", "setter", 4 * DAY - 2 * HOUR))),
    DemoLead("linus@example.com", "Linus", "5554",
             messages=(("outbound", "campaign", 2 * DAY), ("inbound", "lead", DAY)),
             follow_up=("active", 1, -MINUTE, "")),
    DemoLead("margaret@example.com", "Margaret", "5555",
             messages=(("outbound", "campaign", 12 * DAY), ("inbound", "lead", 9 * DAY)),
             follow_up=("paused", 1, None, PauseReason.LEAD_REPLIED)),
    DemoLead("edsger@example.com", "Edsger", "5556", first_email_in=5 * MINUTE),
    DemoLead("barbara@example.com", "Barbara", "5557", first_email_in=10 * MINUTE),
]
GLOBEX_LEADS = [
    DemoLead("hedy@example.com", "Hedy", "6601",
             messages=(("outbound", "campaign", 2 * DAY), ("inbound", "lead", DAY),
                       ("outbound", "setter", DAY - HOUR)),
             follow_up=("active", 1, 2 * DAY, "")),
    DemoLead("katherine@example.com", "Katherine", "6602",
             messages=(("outbound", "campaign", 3 * DAY), ("inbound", "lead", 2 * DAY),
                       ("outbound", "ai", 2 * DAY - 3 * MINUTE)),
             follow_up=("active", 1, DAY, "")),
    DemoLead("dorothy@example.com", "Dorothy", "6603",
             messages=(("outbound", "campaign", 6 * DAY), ("inbound", "lead", 5 * DAY),
                       ("outbound", "setter", 5 * DAY - 40 * MINUTE))),
]
INITECH_LEADS = [
    DemoLead("peter@example.com", "Peter", "7701",
             messages=(("outbound", "campaign", DAY),), follow_up=("active", 0, -2 * MINUTE, "")),
]


def demo_seed(*, now: datetime, provider_base_url: str = DEFAULT_PROVIDER_BASE_URL) -> dict:
    """Create whatever of the demo is missing; returns how many rows of each kind it made."""
    made = dict.fromkeys(["clients", "campaigns", "leads", "messages", "sequences", "steps",
                          "followUps"], 0)
    base = provider_base_url.rstrip("/")
    with transaction.atomic():
        acme = _client(made, "42", name="Acme Outreach", time_zone="Europe/London",
                       emailbison_base_url=base, emailbison_api_key="demo-emailbison-key",
                       availability_source="json", availability_base_url=base,
                       availability_api_key="demo-availability-key",
                       first_touch_slot_offers=True)
        globex = _client(made, "43", name="Globex Sales", time_zone="America/New_York",
                         emailbison_base_url=base, emailbison_api_key="demo-emailbison-key",
                         booking_provider="json", booking_base_url=base,
                         booking_api_key="demo-booking-key",
                         availability_source="json", availability_base_url=base,
                         availability_api_key="demo-availability-key")
        initech = _client(made, "44", name="Initech (no providers)", time_zone="UTC")
        for client, campaign_id, leads in ((acme, "12", ACME_LEADS), (globex, "20", GLOBEX_LEADS),
                                           (initech, "30", INITECH_LEADS)):
            campaign, created = EmailCampaign.objects.get_or_create(
                client=client, bison_campaign_id=campaign_id,
                defaults={"name": f"{client.name}: first touch"})
            made["campaigns"] += created
            sequence = _sequence(made, client)
            for number, demo in enumerate(leads):
                _lead(made, demo, client=client, campaign=campaign, sequence=sequence,
                      now=now, key=f"demo-{campaign_id}-{number}")
    return made


def _client(made: dict, workspace_id: str, **values) -> Client:
    client, created = Client.objects.get_or_create(emailbison_workspace_id=workspace_id,
                                                   defaults=values)
    made["clients"] += created
    return client


def _sequence(made: dict, client: Client) -> FollowUpSequence:
    sequence, created = FollowUpSequence.objects.get_or_create(client=client,
                                                               name="Demo nudges")
    made["sequences"] += created
    for order, (delay_hours, body) in enumerate(STEPS):
        made["steps"] += FollowUpStep.objects.get_or_create(
            sequence=sequence, order=order,
            defaults={"delay_hours": delay_hours, "body_template": body})[1]
    return sequence


def _lead(made: dict, demo: DemoLead, *, client: Client, campaign: EmailCampaign,
          sequence: FollowUpSequence, now: datetime, key: str) -> None:
    lead, created = Lead.objects.get_or_create(
        client=client, email=demo.email,
        defaults={"first_name": demo.first_name, "emailbison_lead_id": demo.bison_id,
                  "first_email_due_at": now + demo.first_email_in if demo.first_email_in
                  else None})
    made["leads"] += created
    new_messages = 0
    for number, (direction, source, age) in enumerate(demo.messages):
        provider_field = ("emailbison_reply_id" if direction == Direction.INBOUND
                          else "inboxxia_scheduled_email_id")
        outbound = direction == Direction.OUTBOUND
        values = {"lead": lead, "direction": direction, "source": source, "sent_at": now - age,
                  "campaign": campaign if source == MessageSource.CAMPAIGN else None,
                  "subject": "Quick question" if outbound else "Re: Quick question"}
        new_messages += Message.objects.get_or_create(
            **{provider_field: f"{key}-{number}"}, defaults=values)[1]
    made["messages"] += new_messages
    if new_messages:
        lead_refresh(lead=lead)
    if demo.follow_up is not None:
        status, step, due_in, reason = demo.follow_up
        made["followUps"] += FollowUpInstance.objects.get_or_create(
            lead=lead, sequence=sequence, defaults={
                "status": status, "current_step": step, "pause_reason": reason,
                "next_step_due_at": now + due_in if due_in is not None else None,
                "paused_at": now - DAY if status == FollowUpStatus.PAUSED else None})[1]
