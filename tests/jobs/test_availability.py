"""The availability cron's work against a local provider server: exact results on fixed data,
idempotency, the time budget, concurrency, and provider errors counted with their back-off."""

import time
from datetime import UTC, datetime, timedelta

import pytest

from jobs.availability import availability_refresh
from jobs.models import AvailabilityCache, Client
from tests.jobs.provider_server import Reply, provider_server  # noqa: F401

NOW = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)  # a Monday
SLOTS = {"slots": [
    {"start": "2026-03-02T13:00:00Z", "end": "2026-03-02T14:30:00Z"},  # starts before NOW
    {"start": "2026-03-03T10:00:00-05:00", "end": "2026-03-03T11:00:00-05:00"},
    {"start": "2026-04-02T09:00:00Z", "end": "2026-04-02T10:00:00Z"},  # past the 30 days
]}
EXPECTED_SLOTS = [
    {"start": "2026-03-02T14:00:00Z", "end": "2026-03-02T14:30:00Z"},
    {"start": "2026-03-03T15:00:00Z", "end": "2026-03-03T15:30:00Z"},
    {"start": "2026-03-03T15:30:00Z", "end": "2026-03-03T16:00:00Z"},
]


@pytest.fixture(autouse=True)
def _quick_providers(settings):
    settings.PROVIDER_TIMEOUT_SECONDS = 2
    settings.PROVIDER_BACKOFF_BASE_SECONDS = 0.01
    settings.AVAILABILITY_CACHE_TTL_SECONDS = 600


def source(server, name: str, *, source_kind="json", **fields) -> Client:
    """A client whose availability source is the server under /<name>."""
    fields = {"availability_base_url": f"{server.base_url}/{name}",
              "availability_api_key": f"key-{name}", **fields}
    return Client.objects.create(name=name, availability_source=source_kind, **fields)


def counts(**nonzero) -> dict:
    base = {"checked": 0, "attempted": 0, "refreshed": 0, "skippedFresh": 0,
            "skippedBackoff": 0, "skippedUnconfigured": 0, "skippedBudget": 0, "errors": 0,
            "errorsByKind": {}, "finishedWithinBudget": True}
    return {**base, **nonzero}


def run(**options) -> dict:
    options = {"now": NOW, "time_budget_ms": 10_000, "concurrency": 4, **options}
    result = availability_refresh(**options)
    assert result.pop("durationMs") >= 0
    return result


def caches() -> list[dict]:
    return list(AvailabilityCache.objects.order_by("client__name").values(
        "client__name", "source", "slots", "fetched_at", "stale_at", "last_error", "failures",
        "next_attempt_at"))


@pytest.mark.django_db
def test_availability_refresh__fixed_data_gives_exact_result(provider_server):
    """Due sources are fetched, fresh, backing-off and unconfigured ones skipped and counted."""
    provider_server.script("GET", "/due/slots", Reply(200, SLOTS))
    due = source(provider_server, "due")
    fresh = source(provider_server, "fresh")
    AvailabilityCache.objects.create(client=fresh, source="json", fetched_at=NOW,
                                     stale_at=NOW + timedelta(minutes=1))
    waiting = source(provider_server, "waiting")
    AvailabilityCache.objects.create(client=waiting, source="json",
                                     next_attempt_at=NOW + timedelta(minutes=1))
    source(provider_server, "nokey", availability_api_key="")
    source(provider_server, "other", source_kind="calendly")
    Client.objects.create(name="none")  # no availability source: not looked at

    result = run()

    assert result == {"sources": {
        "json": counts(checked=4, attempted=1, refreshed=1, skippedFresh=1, skippedBackoff=1,
                       skippedUnconfigured=1),
        "calendly": counts(checked=1, skippedUnconfigured=1),
    }, "finishedWithinBudget": True}
    (request,) = provider_server.requests
    assert (request.path, request.query) == ("/due/slots", {"start": "2026-03-02", "days": "30"})
    assert request.headers["authorization"] == "Bearer key-due"
    cache = AvailabilityCache.objects.get(client=due)
    assert (cache.slots, cache.fetched_at, cache.stale_at, cache.failures) == (
        EXPECTED_SLOTS, NOW, NOW + timedelta(seconds=600), 0)


@pytest.mark.django_db
def test_availability_refresh__second_run_changes_nothing(provider_server):
    """Run twice at the same time: the second fetches nothing and leaves the caches alone."""
    provider_server.script("GET", "/a/slots", Reply(200, SLOTS))
    provider_server.script("GET", "/b/slots", Reply(500))
    source(provider_server, "a")
    source(provider_server, "b")
    run()
    before, requests = caches(), len(provider_server.requests)

    result = run()

    assert result["sources"]["json"] == counts(checked=2, skippedFresh=1, skippedBackoff=1)
    assert caches() == before
    assert len(provider_server.requests) == requests


@pytest.mark.django_db
def test_availability_refresh__provider_errors_are_counted_and_back_off(provider_server,
                                                                        settings):
    """Timeout, 429, 500, malformed JSON and a refused key: counted, each with its back-off."""
    provider_server.script("GET", "/slow/slots", Reply(200, SLOTS, delay_seconds=3))
    provider_server.script("GET", "/limited/slots", Reply(429, {}, {"Retry-After": "0"}))
    provider_server.script("GET", "/broken/slots", Reply(500))
    provider_server.script("GET", "/garbled/slots", Reply(200, b"{'slots': oops"))
    provider_server.script("GET", "/refused/slots", Reply(401))
    provider_server.script("GET", "/fine/slots", Reply(200, SLOTS))
    for name in ("slow", "limited", "broken", "garbled", "refused", "fine"):
        source(provider_server, name)

    settings.PROVIDER_TIMEOUT_SECONDS = 0.5

    result = run()

    assert result["sources"]["json"] == counts(
        checked=6, attempted=6, refreshed=1, errors=5,
        errorsByKind={"timeout": 1, "rateLimited": 1, "serverError": 1, "badResponse": 1,
                      "rejected": 1})
    waits = {row["client__name"]: (row["next_attempt_at"] - NOW if row["next_attempt_at"]
                                   else None, row["failures"]) for row in caches()}
    assert waits == {"slow": (timedelta(minutes=1), 1), "limited": (timedelta(minutes=1), 1),
                     "broken": (timedelta(minutes=1), 1), "garbled": (timedelta(hours=2), 1),
                     "refused": (timedelta(days=1), 1), "fine": (None, 0)}
    broken = AvailabilityCache.objects.get(client__name="broken")
    assert broken.last_error == "Availability (broken): GET /broken/slots -> 500"
    assert "key-broken" not in broken.last_error


@pytest.mark.django_db
def test_availability_refresh__transient_back_off_doubles(provider_server):
    """A source failing again waits twice as long (2^(failures-1) minutes)."""
    provider_server.script("GET", "/broken/slots", Reply(503))
    client = source(provider_server, "broken")
    AvailabilityCache.objects.create(client=client, source="json", failures=3,
                                     next_attempt_at=NOW - timedelta(seconds=1))
    run()
    cache = AvailabilityCache.objects.get(client=client)
    assert (cache.failures, cache.next_attempt_at) == (4, NOW + timedelta(minutes=8))


@pytest.mark.django_db
def test_availability_refresh__slow_provider_stops_within_budget(provider_server):
    """A provider slower than the budget: the run ends near the budget and says so."""
    for name in ("s1", "s2", "s3"):
        provider_server.script("GET", f"/{name}/slots", Reply(200, SLOTS, delay_seconds=5))
        source(provider_server, name)
    started = time.monotonic()

    result = run(time_budget_ms=1000, concurrency=1)

    assert time.monotonic() - started < 2.5
    assert result == {"sources": {"json": counts(
        checked=3, attempted=1, errors=1, errorsByKind={"timeout": 1}, skippedBudget=2,
        finishedWithinBudget=False)}, "finishedWithinBudget": False}
    assert len(provider_server.requests) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("concurrency", [1, 3])
def test_availability_refresh__fetches_at_most_concurrency_at_once(provider_server,
                                                                   concurrency):
    """With six slow sources, the server never answers more than ``concurrency`` at once."""
    for index in range(6):
        provider_server.script("GET", f"/c{index}/slots",
                               Reply(200, SLOTS, delay_seconds=0.3))
        source(provider_server, f"c{index}")
    result = run(concurrency=concurrency)
    assert result["sources"]["json"]["refreshed"] == 6
    assert provider_server.max_in_flight == concurrency
