"""The provider clients against a real local HTTP server: pages, timeouts, 429 with Retry-After,
5xx then success, malformed JSON, auth, and errors that never carry the key."""

import time
from datetime import UTC, date, datetime

import pytest

from jobs.providers.availability import AvailabilityClient
from jobs.providers.base import Deadline, parse_retry_after
from jobs.providers.booking import BookingClient
from jobs.providers.emailbison import EmailBisonClient
from jobs.providers.exceptions import (
    ProviderBadResponse,
    ProviderBudgetExhausted,
    ProviderError,
    ProviderNotConfigured,
    ProviderRateLimited,
    ProviderRejected,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnreachable,
)
from tests.jobs.provider_server import Reply, provider_server  # noqa: F401
from tests.test_settings_env import settings_error

KEY = "sk-test-secret-key-123"
SLOTS = {"slots": [{"start": "2026-03-03T15:00:00Z", "end": "2026-03-03T15:30:00Z"},
                   {"start": "2026-03-02T15:00:00+00:00", "end": "2026-03-02T15:30:00+00:00"}]}


@pytest.fixture(autouse=True)
def _quick_retries(settings):
    settings.PROVIDER_TIMEOUT_SECONDS = 0.5
    settings.PROVIDER_MAX_RETRIES = 2
    settings.PROVIDER_BACKOFF_BASE_SECONDS = 0.01
    settings.PROVIDER_BACKOFF_MAX_SECONDS = 5


def bison(server) -> EmailBisonClient:
    return EmailBisonClient(base_url=server.base_url, api_key=KEY, label="Acme")


def leads_page(request):
    """Three pages of two leads, chosen by ?page=."""
    page = int(request.query["page"])
    data = [{"id": page * 10 + i, "email": f"p{page}-{i}@example.com"} for i in (1, 2)]
    return Reply(200, {"data": data, "meta": {"current_page": page, "last_page": 3}})


def test_emailbison_campaign_leads__walks_every_page(provider_server):
    """Pages 1..last_page are fetched in order and every lead is yielded once."""
    provider_server.script("GET", "/api/campaigns/7/leads", leads_page)
    with bison(provider_server) as client:
        pages = list(client.campaign_leads("7"))
    assert [[lead["id"] for lead in page] for page in pages] == [[11, 12], [21, 22], [31, 32]]
    assert [r.query["page"] for r in provider_server.requests] == ["1", "2", "3"]


def test_emailbison_campaign_leads__stops_at_max_pages(provider_server):
    """max_pages bounds the walk even when the provider has more."""
    provider_server.script("GET", "/api/campaigns/7/leads", leads_page)
    with bison(provider_server) as client:
        assert len(list(client.campaign_leads("7", max_pages=2))) == 2
    assert len(provider_server.requests) == 2


def test_emailbison_custom_variable__patches_the_lead_with_the_key(provider_server):
    """PATCH /api/leads/<id> with the custom variable, the key as a bearer token."""
    provider_server.script("PATCH", "/api/leads/42", Reply(200, {"data": {"id": 42}}))
    with bison(provider_server) as client:
        client.lead_custom_variable_set("42", "availability_slot", "Tuesday at 10am")
    (request,) = provider_server.requests
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.json() == {"custom_variables": [{"name": "availability_slot",
                                                    "value": "Tuesday at 10am"}]}


def test_provider_client__slow_answer_is_a_timeout_not_retried(provider_server, settings):
    """An answer slower than the timeout raises ProviderTimeout after one request."""
    settings.PROVIDER_TIMEOUT_SECONDS = 0.2
    provider_server.script("GET", "/slots", Reply(200, SLOTS, delay_seconds=1.0))
    started = time.monotonic()
    with pytest.raises(ProviderTimeout) as caught:
        with AvailabilityClient(base_url=provider_server.base_url, api_key=KEY) as client:
            client.slots(start=date(2026, 3, 1), days=30)
    assert time.monotonic() - started < 0.9
    assert len(provider_server.requests) == 1
    assert str(caught.value) == "Availability: GET /slots -> timeout (no answer within 0.2 s)"


def test_provider_client__deadline_cuts_the_timeout(provider_server, settings):
    """With a deadline sooner than the timeout, the request gives up at the deadline."""
    settings.PROVIDER_TIMEOUT_SECONDS = 5
    provider_server.script("GET", "/slots", Reply(200, SLOTS, delay_seconds=2.0))
    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        with AvailabilityClient(base_url=provider_server.base_url, api_key=KEY) as client:
            client.slots(start=date(2026, 3, 1), days=30, deadline=Deadline.after(0.3))
    assert time.monotonic() - started < 1.0


def test_provider_client__spent_deadline_sends_nothing(provider_server):
    """A deadline already passed raises ProviderBudgetExhausted without a request."""
    with pytest.raises(ProviderBudgetExhausted):
        with BookingClient(base_url=provider_server.base_url, api_key=KEY) as client:
            client.appointments(email="a@example.com", deadline=Deadline.after(0))
    assert provider_server.requests == []


def test_provider_client__429_waits_retry_after_then_succeeds(provider_server, settings):
    """A 429 with Retry-After: 1 is retried after about a second, then the answer is read."""
    settings.PROVIDER_BACKOFF_BASE_SECONDS = 5  # so only Retry-After can explain a 1 s wait
    provider_server.script("GET", "/slots", Reply(429, {}, {"Retry-After": "1"}),
                           Reply(200, SLOTS))
    started = time.monotonic()
    with AvailabilityClient(base_url=provider_server.base_url, api_key=KEY) as client:
        slots = client.slots(start=date(2026, 3, 1), days=30)
    assert 0.9 <= time.monotonic() - started < 3
    assert [slot.start_at for slot in slots] == [datetime(2026, 3, 2, 15, tzinfo=UTC),
                                                 datetime(2026, 3, 3, 15, tzinfo=UTC)]
    assert len(provider_server.requests) == 2


def test_provider_client__retry_after_past_the_deadline_fails_at_once(provider_server):
    """A Retry-After that would end after the caller's deadline is not waited for."""
    provider_server.script("GET", "/slots", Reply(429, {}, {"Retry-After": "3"}))
    started = time.monotonic()
    with pytest.raises(ProviderRateLimited) as caught:
        with AvailabilityClient(base_url=provider_server.base_url, api_key=KEY) as client:
            client.slots(start=date(2026, 3, 1), days=30, deadline=Deadline.after(1))
    assert time.monotonic() - started < 0.5
    assert len(provider_server.requests) == 1
    assert str(caught.value) == "Availability: GET /slots -> 429"


def test_provider_client__retry_after_beyond_the_cap_fails_at_once(provider_server, settings):
    """A Retry-After longer than PROVIDER_BACKOFF_MAX_SECONDS is not waited for either."""
    settings.PROVIDER_BACKOFF_MAX_SECONDS = 2
    provider_server.script("GET", "/slots", Reply(429, {}, {"Retry-After": "60"}))
    with pytest.raises(ProviderRateLimited):
        with AvailabilityClient(base_url=provider_server.base_url, api_key=KEY) as client:
            client.slots(start=date(2026, 3, 1), days=30)
    assert len(provider_server.requests) == 1


def test_provider_client__500_then_success(provider_server):
    """A 500 then a 200: retried with backoff, the answer returned."""
    provider_server.script("GET", "/appointments", Reply(500, {"error": "boom"}),
                           Reply(200, {"appointments": []}))
    with BookingClient(base_url=provider_server.base_url, api_key=KEY) as client:
        assert client.appointments(email="a@example.com") == []
    assert len(provider_server.requests) == 2


def test_provider_client__500_every_time_gives_up_after_the_retries(provider_server):
    """Three 503s (one attempt and two retries) raise ProviderServerError naming the status."""
    provider_server.script("GET", "/appointments", Reply(503))
    with pytest.raises(ProviderServerError) as caught:
        with BookingClient(base_url=provider_server.base_url, api_key=KEY,
                           label="Acme") as client:
            client.appointments(email="a@example.com")
    assert len(provider_server.requests) == 3
    assert str(caught.value) == "Booking (Acme): GET /appointments -> 503"


def test_provider_client__4xx_is_not_retried(provider_server):
    """A 401 is ProviderRejected after one request."""
    provider_server.script("PATCH", "/api/leads/1", Reply(401, {"message": "bad key"}))
    with pytest.raises(ProviderRejected) as caught:
        with bison(provider_server) as client:
            client.lead_custom_variable_set("1", "availability_slot", "x")
    assert len(provider_server.requests) == 1
    assert str(caught.value) == "EmailBison (Acme): PATCH /api/leads/1 -> 401"


@pytest.mark.parametrize("body", [b"{not json", b"<html>busy</html>"])
def test_provider_client__malformed_json_is_a_bad_response(provider_server, body):
    """A 200 whose body is not JSON raises ProviderBadResponse, not retried."""
    provider_server.script("GET", "/slots", Reply(200, body))
    with pytest.raises(ProviderBadResponse) as caught:
        with AvailabilityClient(base_url=provider_server.base_url, api_key=KEY) as client:
            client.slots(start=date(2026, 3, 1), days=30)
    assert len(provider_server.requests) == 1
    assert str(caught.value) == "Availability: GET /slots -> 200 (the body is not JSON)"


@pytest.mark.parametrize("answer", [
    [], {"slots": "soon"}, {"slots": [{"start": "2026-03-03T15:00:00"}]},
    {"slots": [{"start": "2026-03-03T15:00:00", "end": "2026-03-03T15:30:00"}]},
    {"slots": [{"start": "2026-03-03T15:30:00Z", "end": "2026-03-03T15:00:00Z"}]},
])
def test_availability_slots__unsupported_shapes_are_bad_responses(provider_server, answer):
    """JSON the client does not understand (no list, naive times, end before start) is refused."""
    provider_server.script("GET", "/slots", Reply(200, answer))
    with pytest.raises(ProviderBadResponse):
        with AvailabilityClient(base_url=provider_server.base_url, api_key=KEY) as client:
            client.slots(start=date(2026, 3, 1), days=30)


def test_availability_slots__sends_the_range(provider_server):
    """The request asks for the start date and the number of days."""
    provider_server.script("GET", "/slots", Reply(200, {"slots": []}))
    with AvailabilityClient(base_url=provider_server.base_url, api_key=KEY) as client:
        assert client.slots(start=date(2026, 3, 1), days=30) == []
    assert provider_server.requests[0].query == {"start": "2026-03-01", "days": "30"}


def test_booking_appointments__reads_booked_and_cancelled(provider_server):
    """Both spellings of cancelled are read as canceled; the email is the query."""
    provider_server.script("GET", "/appointments", Reply(200, {"appointments": [
        {"id": 5, "status": "booked", "start": "2026-03-02T15:00:00Z",
         "end": "2026-03-02T15:30:00Z"},
        {"id": "6", "status": "Cancelled", "start": "2026-03-01T15:00:00Z"}]}))
    with BookingClient(base_url=provider_server.base_url, api_key=KEY) as client:
        found = client.appointments(email="Ann@Example.com")
    assert [(a.provider_id, a.status, a.end_at is None) for a in found] == [
        ("5", "booked", False), ("6", "canceled", True)]
    assert provider_server.requests[0].query == {"email": "Ann@Example.com"}


def test_provider_client__unreachable_is_retried_then_raised(provider_server):
    """A refused connection is retried, then ProviderUnreachable names the path."""
    base_url = provider_server.base_url
    provider_server.shutdown()
    provider_server.server_close()
    with pytest.raises(ProviderUnreachable) as caught:
        with AvailabilityClient(base_url=base_url, api_key=KEY) as client:
            client.slots(start=date(2026, 3, 1), days=30)
    assert str(caught.value).startswith("Availability: GET /slots -> unreachable")


@pytest.mark.parametrize("base_url,api_key", [("", KEY), ("http://x", ""), ("  ", "  ")])
def test_provider_client__without_url_or_key_is_not_configured(base_url, api_key):
    """A missing base URL or key raises ProviderNotConfigured before any request."""
    with pytest.raises(ProviderNotConfigured):
        EmailBisonClient(base_url=base_url, api_key=api_key)


def test_provider_errors__never_carry_the_key(provider_server):
    """No failure's message (or repr) contains the API key, even when the body echoes it."""
    provider_server.script("GET", "/slots", Reply(500, {"key": KEY}))
    provider_server.script("GET", "/appointments", Reply(200, f"bad {KEY}".encode()))
    provider_server.script("PATCH", "/api/leads/1", Reply(403, {"key": KEY}))
    errors = []
    for call in (
        lambda: AvailabilityClient(base_url=provider_server.base_url, api_key=KEY).slots(
            start=date(2026, 3, 1), days=30),
        lambda: BookingClient(base_url=provider_server.base_url, api_key=KEY).appointments(
            email="a@example.com"),
        lambda: bison(provider_server).lead_custom_variable_set("1", "v", KEY[::-1]),
    ):
        with pytest.raises(ProviderError) as caught:
            call()
        errors.append(caught.value)
    assert len(errors) == 3
    assert all(KEY not in str(error) and KEY not in repr(error) for error in errors)


def test_parse_retry_after__seconds_dates_and_junk():
    """Delta-seconds, an HTTP date (past is 0), and unreadable values (None)."""
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Sun, 01 Mar 2026 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Sun, 01 Mar 2026 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None



@pytest.mark.parametrize("name,value", [("PROVIDER_MAX_RETRIES", "9"),
                                        ("PROVIDER_TIMEOUT_SECONDS", "soon"),
                                        ("APPOINTMENT_RECONCILE_TIME_BUDGET_SECONDS", "500")])
def test_provider_settings__bad_environment_stops_start_up(name, value):
    """A provider setting out of range or not a number is a start-up error naming it."""
    assert f"{name}=" in settings_error(**{name: value})


def test_provider_client__undecodable_body_is_a_bad_response(provider_server):
    """A body httpx cannot decode (gzip that is not) is ProviderBadResponse, not a crash."""
    provider_server.script("GET", "/slots", Reply(200, b"plain", {"Content-Encoding": "gzip"}))
    with pytest.raises(ProviderBadResponse) as caught:
        with AvailabilityClient(base_url=provider_server.base_url, api_key=KEY) as client:
            client.slots(start=date(2026, 3, 1), days=30)
    assert str(caught.value) == "Availability: GET /slots -> unreadable (DecodingError)"
