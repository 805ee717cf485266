"""The ``emailbison-availability-slot`` cron's work: offer leads about to get their first campaign
email one or two open slots, through their EmailBison ``availability_slot`` custom variable (the
campaign's first email template writes ``{availability_slot}`` where the sentence belongs).

"Due their first email" is ``Lead.first_email_due_at`` (when the campaign will send the first
email: set by whoever loads the lead into the campaign, the demo data included) within the next
15 minutes, with no outbound email recorded yet (``last_outbound_at`` empty) and the lead not
blacklisted. A lead offered slots in the last 6 hours (a SlotOffer row) is not offered again.

Per client with slot offers on and EmailBison configured (a client with offers on but no
EmailBison URL or key is counted in ``clientsNotConfigured``): the slots come from the client's
AvailabilityCache (the ``availability`` cron's), the first weekday slot at least 12 hours ahead in
the client's time zone and the first on a later weekday; the sentence names them in that time
zone. A lead without an EmailBison id is looked up by email in the client's campaigns, page by
page. Then the custom variable is written and the offer recorded (SlotOffer, ``Lead.
offered_slots``). ``dryRun`` reads the same and writes nothing, to the database or EmailBison; its
result previews a few sentences.
"""

import logging
import time
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db import transaction

from jobs import conf
from jobs.models import AvailabilityCache, Client, EmailCampaign, Lead, LeadStatus, SlotOffer
from jobs.providers.availability import aware
from jobs.providers.base import Deadline
from jobs.providers.emailbison import EmailBisonClient
from jobs.providers.exceptions import ProviderBudgetExhausted, ProviderError

logger = logging.getLogger(__name__)

PREVIEW_MAX = 5
COUNTERS = ("clientsChecked", "clientsNotConfigured", "clientsWithoutAvailability", "leadsDue",
            "offered", "skippedRecentlyOffered", "skippedNoProviderLead", "skippedNoSlots",
            "errors")


class _OutOfTime(Exception):
    """The run's budget is spent: stop where we are."""


def slot_offers_run(*, now: datetime, time_budget_ms: int, dry_run: bool) -> dict:
    started = time.monotonic()
    deadline = Deadline.after(time_budget_ms / 1000)
    result = {"dryRun": dry_run, **dict.fromkeys(COUNTERS, 0), "errorsByKind": {}}
    preview = []
    within = True
    clients = Client.objects.filter(first_touch_slot_offers=True).order_by("pk")
    try:
        for client in clients[:conf.slot_clients_per_run()]:
            if deadline.passed():
                raise _OutOfTime
            result["clientsChecked"] += 1
            if not (client.emailbison_base_url.strip() and client.emailbison_api_key.strip()):
                result["clientsNotConfigured"] += 1
                continue
            _client_offers(client, result, preview, now=now, deadline=deadline,
                           dry_run=dry_run)
    except _OutOfTime:
        within = False
    result["finishedWithinBudget"] = within and not deadline.passed()
    if dry_run:
        result["preview"] = preview
    result["durationMs"] = int((time.monotonic() - started) * 1000)
    return result


def _client_offers(client: Client, result: dict, preview: list, *, now: datetime,
                   deadline: Deadline, dry_run: bool) -> None:
    leads = list(Lead.objects.filter(
        client=client, last_outbound_at__isnull=True, first_email_due_at__gte=now,
        first_email_due_at__lte=now + conf.SLOT_DUE_WITHIN,
    ).exclude(status=LeadStatus.BLACKLISTED).order_by("first_email_due_at", "pk")
        [:conf.slot_leads_per_client()])
    if not leads:
        return
    result["leadsDue"] += len(leads)
    recent = set(SlotOffer.objects.filter(
        client=client, lead__in=leads, offered_at__gt=now - conf.SLOT_REOFFER_AFTER,
    ).values_list("lead_id", flat=True))
    result["skippedRecentlyOffered"] += len(recent)
    leads = [lead for lead in leads if lead.pk not in recent]
    if not leads:
        return
    cache = AvailabilityCache.objects.filter(client=client,
                                             source=client.availability_source).first()
    tz = client_zone(client)
    slots = pick_slots(cache.slots if cache else [], now=now, tz=tz)
    if not slots:
        result["clientsWithoutAvailability"] += 1
        result["skippedNoSlots"] += len(leads)
        return
    sentence = offer_sentence(slots, tz=tz)
    with EmailBisonClient.for_client(client) as bison:
        missing = [lead for lead in leads if not lead.emailbison_lead_id]
        if missing:
            _find_provider_ids(bison, client, missing, result, deadline=deadline,
                               dry_run=dry_run)
        for lead in leads:
            if not lead.emailbison_lead_id:
                result["skippedNoProviderLead"] += 1
                continue
            if deadline.passed():
                raise _OutOfTime
            if dry_run:
                result["offered"] += 1
                if len(preview) < PREVIEW_MAX:
                    preview.append({"leadId": lead.pk, "emailbisonLeadId":
                                    lead.emailbison_lead_id, "sentence": sentence})
                continue
            _offer(bison, client, lead, slots, sentence, result, now=now, deadline=deadline)


def _offer(bison: EmailBisonClient, client: Client, lead: Lead, slots: list[dict],
           sentence: str, result: dict, *, now: datetime, deadline: Deadline) -> None:
    try:
        bison.lead_custom_variable_set(lead.emailbison_lead_id, conf.SLOT_CUSTOM_VARIABLE,
                                       sentence, deadline=deadline)
    except ProviderBudgetExhausted:
        raise _OutOfTime from None
    except ProviderError as error:
        _count_error(result, error, client)
        return
    with transaction.atomic():
        SlotOffer.objects.create(client=client, lead=lead,
                                 emailbison_lead_id=lead.emailbison_lead_id, slots=slots,
                                 sentence=sentence, offered_at=now)
        Lead.objects.filter(pk=lead.pk).update(offered_slots=slots)
    result["offered"] += 1


def _find_provider_ids(bison: EmailBisonClient, client: Client, leads: list[Lead],
                       result: dict, *, deadline: Deadline, dry_run: bool) -> None:
    """Fill ``emailbison_lead_id`` of ``leads`` from the client's campaigns' lead lists (kept
    on the lead unless ``dry_run``)."""
    wanted = {lead.email.lower(): lead for lead in leads}
    campaign_ids = EmailCampaign.objects.filter(client=client).order_by("pk").values_list(
        "bison_campaign_id", flat=True)
    for campaign_id in campaign_ids:
        try:
            for page in bison.campaign_leads(campaign_id, deadline=deadline,
                                             max_pages=conf.slot_lead_lookup_pages()):
                for item in page:
                    lead = wanted.pop(str(item["email"]).lower(), None)
                    if lead is not None:
                        lead.emailbison_lead_id = str(item["id"])
                        if not dry_run:
                            Lead.objects.filter(pk=lead.pk).update(
                                emailbison_lead_id=lead.emailbison_lead_id)
                if not wanted:
                    return
        except ProviderBudgetExhausted:
            raise _OutOfTime from None
        except ProviderError as error:
            _count_error(result, error, client)


def _count_error(result: dict, error: ProviderError, client: Client) -> None:
    result["errors"] += 1
    result["errorsByKind"][error.kind] = result["errorsByKind"].get(error.kind, 0) + 1
    logger.warning("slot offer: %s", error, extra={"action": "slot_offer_failed",
                                                   "client_id": client.pk, "kind": error.kind})


def client_zone(client: Client) -> ZoneInfo:
    try:
        return ZoneInfo(client.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        logger.warning("client %s: unknown time zone %r, using UTC", client.pk,
                       client.time_zone, extra={"action": "client_time_zone_unknown"})
        return ZoneInfo("UTC")


def pick_slots(cached: list[dict], *, now: datetime, tz: ZoneInfo) -> list[dict]:
    """The first weekday slot (in ``tz``) starting at least SLOT_MIN_NOTICE after ``now``, and
    the first one on a later weekday: one or two slots, or none."""
    earliest = now + conf.SLOT_MIN_NOTICE
    picked, first_day = [], None
    for slot in cached:
        try:
            start = aware(slot["start"])
        except (TypeError, KeyError, ValueError):
            continue
        local = start.astimezone(tz)
        if start < earliest or local.weekday() >= 5 or local.date() == first_day:
            continue
        picked.append(slot)
        first_day = local.date()
        if len(picked) == 2:
            break
    return picked


def offer_sentence(slots: list[dict], *, tz: ZoneInfo) -> str:
    """``Would Tuesday, March 3 at 10:00 AM EST or Wednesday, March 4 at 2:30 PM EST work for a
    quick call?``"""
    times = " or ".join(_spoken(aware(slot["start"]).astimezone(tz)) for slot in slots)
    return f"Would {times} work for a quick call?"


def _spoken(local: datetime) -> str:
    clock = local.strftime("%I:%M %p").lstrip("0")
    return f"{local:%A, %B} {local.day} at {clock} {local.tzname()}"
