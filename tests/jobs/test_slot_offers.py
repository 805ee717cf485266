"""The emailbison-availability-slot cron's work against a local EmailBison: exact results on
fixed data, idempotency, dryRun (no PATCH, no row), provider errors counted, the time budget."""

import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from jobs.models import AvailabilityCache, Client, EmailCampaign, Lead, LeadStatus, SlotOffer
from jobs.slot_offers import offer_sentence, pick_slots, slot_offers_run
from tests.jobs.provider_server import Reply, provider_server  # noqa: F401

NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # Monday 9:00 AM in New York (EST)
CACHED = [
    {"start": "2026-03-02T20:00:00Z", "end": "2026-03-02T20:30:00Z"},  # under 12 h ahead
    {"start": "2026-03-03T15:00:00Z", "end": "2026-03-03T15:30:00Z"},  # Tue 10:00 AM EST
    {"start": "2026-03-03T16:00:00Z", "end": "2026-03-03T16:30:00Z"},  # the same Tuesday
    {"start": "2026-03-04T19:30:00Z", "end": "2026-03-04T20:00:00Z"},  # Wed 2:30 PM EST
]
OFFERED = [CACHED[1], CACHED[3]]
SENTENCE = ("Would Tuesday, March 3 at 10:00 AM EST or Wednesday, March 4 at 2:30 PM EST "
            "work for a quick call?")


def bison_client(server, name: str, **fields) -> Client:
    fields = {"emailbison_base_url": f"{server.base_url}/{name}",
              "emailbison_api_key": f"key-{name}", "first_touch_slot_offers": True,
              "availability_source": "json", "time_zone": "America/New_York", **fields}
    return Client.objects.create(name=name, **fields)


def lead(client, email, *, due_in=timedelta(minutes=5), **fields) -> Lead:
    return Lead.objects.create(client=client, email=email, first_email_due_at=NOW + due_in,
                               **fields)


def campaign_pages(request):
    """Campaign 7's leads over two pages; Two@ is on the second, in other case."""
    page = int(request.query["page"])
    data = ([{"id": 900, "email": "someone@else.com"}] if page == 1
            else [{"id": 202, "email": "TWO@acme.test"}])
    return Reply(200, {"data": data, "meta": {"current_page": page, "last_page": 2}})


@pytest.fixture
def acme(db, provider_server):
    """A client whose EmailBison is the server under /acme, with cached slots, due leads and
    leads that are not due; plus one client without EmailBison and one without slots."""
    client = bison_client(provider_server, "acme")
    AvailabilityCache.objects.create(client=client, source="json", slots=CACHED, fetched_at=NOW)
    EmailCampaign.objects.create(client=client, bison_campaign_id="7")
    lead(client, "one@acme.test", emailbison_lead_id="101")
    lead(client, "two@acme.test", due_in=timedelta(minutes=14))
    lead(client, "later@acme.test", due_in=timedelta(minutes=16), emailbison_lead_id="1")
    lead(client, "past@acme.test", due_in=timedelta(minutes=-1), emailbison_lead_id="2")
    lead(client, "sent@acme.test", emailbison_lead_id="3", last_outbound_at=NOW)
    lead(client, "stop@acme.test", emailbison_lead_id="4", status=LeadStatus.BLACKLISTED)
    recent = lead(client, "recent@acme.test", emailbison_lead_id="303")
    old = lead(client, "old@acme.test", emailbison_lead_id="404")
    lead(client, "unknown@acme.test")
    for offered, hours in ((recent, 5), (old, 7)):
        SlotOffer.objects.create(client=client, lead=offered, emailbison_lead_id=offered.
                                 emailbison_lead_id, slots=[], sentence="earlier",
                                 offered_at=NOW - timedelta(hours=hours))
    lead(bison_client(provider_server, "nobison", emailbison_base_url=""), "x@nobison.test",
         emailbison_lead_id="5")
    lead(bison_client(provider_server, "noslots"), "y@noslots.test", emailbison_lead_id="6")
    lead(bison_client(provider_server, "off", first_touch_slot_offers=False), "z@off.test",
         emailbison_lead_id="7")
    provider_server.script("GET", "/acme/api/campaigns/7/leads", campaign_pages)
    for lead_id in ("101", "202", "404"):
        provider_server.script("PATCH", f"/acme/api/leads/{lead_id}", Reply(200, {"data": {}}))
    return client


def run(**options) -> dict:
    result = slot_offers_run(**{"now": NOW, "time_budget_ms": 10_000, "dry_run": False,
                                **options})
    assert result.pop("durationMs") >= 0
    return result


def expected(**changes) -> dict:
    return {"dryRun": False, "clientsChecked": 3, "clientsNotConfigured": 1,
            "clientsWithoutAvailability": 1, "leadsDue": 6, "offered": 3,
            "skippedRecentlyOffered": 1, "skippedNoProviderLead": 1, "skippedNoSlots": 1,
            "errors": 0, "errorsByKind": {}, "finishedWithinBudget": True, **changes}


def snapshot() -> dict:
    return {"offers": list(SlotOffer.objects.order_by("pk").values(
                "lead__email", "emailbison_lead_id", "slots", "sentence", "offered_at")),
            "leads": list(Lead.objects.order_by("pk").values(
                "email", "emailbison_lead_id", "offered_slots"))}


def test_slot_offers_run__fixed_data_gives_exact_result(acme, provider_server):
    """Due leads get the two slots as a sentence in EmailBison, recorded once each."""
    assert run() == expected()

    patches = provider_server.requests_to("PATCH")
    assert [r.path for r in patches] == ["/acme/api/leads/101", "/acme/api/leads/404",
                                         "/acme/api/leads/202"]  # by due time
    assert all(r.json() == {"custom_variables": [{"name": "availability_slot",
                                                  "value": SENTENCE}]} for r in patches)
    assert all(r.headers["authorization"] == "Bearer key-acme" for r in patches)
    new = SlotOffer.objects.filter(offered_at=NOW).order_by("pk")
    assert [(o.lead.email, o.emailbison_lead_id, o.slots, o.sentence) for o in new] == [
        ("one@acme.test", "101", OFFERED, SENTENCE), ("old@acme.test", "404", OFFERED, SENTENCE),
        ("two@acme.test", "202", OFFERED, SENTENCE)]
    two = Lead.objects.get(email="two@acme.test")
    assert (two.emailbison_lead_id, two.offered_slots) == ("202", OFFERED)


def test_slot_offers_run__second_run_changes_nothing(acme, provider_server):
    """A second run at the same time sends no PATCH and writes no row."""
    run()
    before, patches = snapshot(), len(provider_server.requests_to("PATCH"))

    assert run() == expected(offered=0, skippedRecentlyOffered=4)
    assert snapshot() == before
    assert len(provider_server.requests_to("PATCH")) == patches


def test_slot_offers_run__dry_run_writes_nothing(acme, provider_server):
    """dryRun reads EmailBison but sends it no write, creates no row, and previews."""
    before = snapshot()

    result = run(dry_run=True)

    assert result.pop("preview") == [
        {"leadId": Lead.objects.get(email=email).pk, "emailbisonLeadId": lead_id,
         "sentence": SENTENCE}
        for email, lead_id in (("one@acme.test", "101"), ("old@acme.test", "404"),
                               ("two@acme.test", "202"))]
    assert result == expected(dryRun=True)
    assert {r.method for r in provider_server.requests} == {"GET"}
    assert snapshot() == before


def test_slot_offers_run__provider_errors_are_counted(acme, provider_server, settings):
    """500, 429 and malformed JSON answering the PATCHes: counted, no offer recorded."""
    settings.PROVIDER_BACKOFF_BASE_SECONDS = 0.01
    provider_server.script("PATCH", "/acme/api/leads/101", Reply(500))
    provider_server.script("PATCH", "/acme/api/leads/202", Reply(429, {}, {"Retry-After": "0"}))
    provider_server.script("PATCH", "/acme/api/leads/404", Reply(200, b"<html>"))

    result = run()

    assert result == expected(offered=0, errors=3, errorsByKind={
        "serverError": 1, "rateLimited": 1, "badResponse": 1})
    assert not SlotOffer.objects.filter(offered_at=NOW).exists()


def test_slot_offers_run__failed_lead_lookup_is_counted(acme, provider_server):
    """The campaign's lead list failing: counted, the leads without an id skipped, the others
    offered."""
    provider_server.script("GET", "/acme/api/campaigns/7/leads", Reply(404))

    assert run() == expected(offered=2, skippedNoProviderLead=2, errors=1,
                             errorsByKind={"rejected": 1})


def test_slot_offers_run__slow_provider_stops_within_budget(acme, provider_server):
    """PATCHes slower than the budget: the run stops near it and says so."""
    for lead_id in ("101", "202", "404"):
        provider_server.script("PATCH", f"/acme/api/leads/{lead_id}",
                               Reply(200, {}, delay_seconds=5))
    started = time.monotonic()

    result = run(time_budget_ms=1000)

    assert time.monotonic() - started < 2.5
    assert result["finishedWithinBudget"] is False
    assert (result["offered"], result["errorsByKind"]) == (0, {"timeout": 1})
    assert len(provider_server.requests_to("PATCH")) == 1
    assert not SlotOffer.objects.filter(offered_at=NOW).exists()


def test_pick_slots__weekdays_in_the_client_zone():
    """A slot on Saturday in the client's zone is skipped though it is Friday in UTC."""
    tokyo = ZoneInfo("Asia/Tokyo")
    friday_utc_saturday_tokyo = {"start": "2026-03-06T16:00:00Z", "end": "2026-03-06T16:30Z"}
    monday_tokyo = {"start": "2026-03-08T23:00:00Z", "end": "2026-03-08T23:30:00Z"}
    assert pick_slots([friday_utc_saturday_tokyo, monday_tokyo], now=NOW, tz=tokyo) == [
        monday_tokyo]
    assert offer_sentence([monday_tokyo], tz=tokyo) == (
        "Would Monday, March 9 at 8:00 AM JST work for a quick call?")
