"""The ``availability`` cron's work: refresh each client's cache of free 30-minute slots.

For every client with an availability source (at most ``AVAILABILITY_SOURCES_PER_RUN``), in the
order of their oldest cache first: a source this service cannot speak, or one without a base URL
or key, is skipped and counted (``skippedUnconfigured``); a source in back-off
(``next_attempt_at`` ahead) or with a fresh cache (``stale_at`` ahead) is skipped; the rest are
fetched, ``concurrency`` at a time, each request cut to the run's time budget. Threads only
speak HTTP; every database write happens on the calling thread.

A fetch that succeeds replaces the cache: the next 30 days of slots cut into 30-minute pieces,
fresh for ``AVAILABILITY_CACHE_TTL_SECONDS``. One that fails keeps the old slots and records the
error and a back-off (jobs.conf: a day for a refused account, two hours for data the client
cannot read, minutes for transient failures). A fetch the budget left no time for is
``skippedBudget`` and the source's ``finishedWithinBudget`` is false.
"""

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from jobs import conf
from jobs.models import AvailabilityCache, Client
from jobs.providers.availability import SUPPORTED_SOURCES, AvailabilityClient, Slot
from jobs.providers.base import Deadline
from jobs.providers.exceptions import (
    ProviderBadResponse,
    ProviderBudgetExhausted,
    ProviderError,
    ProviderNotConfigured,
    ProviderRejected,
)

logger = logging.getLogger(__name__)

COUNTERS = ("checked", "attempted", "refreshed", "skippedFresh", "skippedBackoff",
            "skippedUnconfigured", "skippedBudget", "errors")


def availability_refresh(*, now: datetime, time_budget_ms: int, concurrency: int) -> dict:
    """Refresh due availability caches; the result counts each source kind's clients."""
    started = time.monotonic()
    deadline = Deadline.after(time_budget_ms / 1000)
    clients = list(Client.objects.exclude(availability_source="").order_by("pk")
                   [:conf.availability_sources_per_run()])
    caches = {(cache.client_id, cache.source): cache for cache in
              AvailabilityCache.objects.filter(client__in=clients)}
    sources: dict[str, dict] = {}
    due = []
    for client in clients:
        counts = sources.setdefault(client.availability_source, _new_counts())
        counts["checked"] += 1
        cache = caches.get((client.pk, client.availability_source))
        skipped = _skip_reason(client, cache, now)
        if skipped:
            counts[skipped] += 1
        else:
            due.append((client, cache))
    due.sort(key=lambda item: _fetched_at(item[1]))  # never fetched first, then the oldest
    with ThreadPoolExecutor(max_workers=concurrency,
                            thread_name_prefix="availability") as pool:
        fetches = [(client, cache, pool.submit(_fetch, client, now, deadline))
                   for client, cache in due]
        for client, cache, future in fetches:
            _record(sources[client.availability_source], client, cache, future.result(), now)
    within = not deadline.passed()
    for counts in sources.values():
        counts["finishedWithinBudget"] = within and counts["skippedBudget"] == 0
    return {"sources": sources, "finishedWithinBudget": within and all(
        counts["finishedWithinBudget"] for counts in sources.values()),
        "durationMs": int((time.monotonic() - started) * 1000)}


def _new_counts() -> dict:
    return {**dict.fromkeys(COUNTERS, 0), "errorsByKind": {}}


def _fetched_at(cache: AvailabilityCache | None) -> tuple:
    fetched_at = cache.fetched_at if cache else None
    return (fetched_at is not None, fetched_at or datetime.min.replace(tzinfo=UTC))


def _skip_reason(client: Client, cache: AvailabilityCache | None, now: datetime) -> str:
    if client.availability_source not in SUPPORTED_SOURCES or not (
            client.availability_base_url.strip() and client.availability_api_key.strip()):
        return "skippedUnconfigured"
    if cache and cache.next_attempt_at and cache.next_attempt_at > now:
        return "skippedBackoff"
    if cache and cache.stale_at and cache.stale_at > now:
        return "skippedFresh"
    return ""


def _fetch(client: Client, now: datetime, deadline: Deadline) -> list[Slot] | ProviderError:
    """In a pool thread, HTTP only: the client's slots, or the error that stopped the fetch."""
    try:
        with AvailabilityClient.for_client(client) as source:
            return source.slots(start=now.date(), days=conf.AVAILABILITY_DAYS, deadline=deadline)
    except ProviderError as error:
        return error


def _record(counts: dict, client: Client, cache: AvailabilityCache | None,
            outcome: list[Slot] | ProviderError, now: datetime) -> None:
    if isinstance(outcome, ProviderBudgetExhausted):
        counts["skippedBudget"] += 1
        return
    if isinstance(outcome, ProviderNotConfigured):  # the row changed under us: as if skipped
        counts["skippedUnconfigured"] += 1
        return
    counts["attempted"] += 1
    key = {"client": client, "source": client.availability_source}
    if isinstance(outcome, ProviderError):
        counts["errors"] += 1
        counts["errorsByKind"][outcome.kind] = counts["errorsByKind"].get(outcome.kind, 0) + 1
        failures = (cache.failures if cache else 0) + 1
        AvailabilityCache.objects.update_or_create(**key, defaults={
            "last_error": str(outcome)[:1000], "last_error_at": now, "failures": failures,
            "next_attempt_at": now + backoff_after(outcome, failures)})
        logger.warning("availability fetch failed: %s", outcome,
                       extra={"action": "availability_fetch_failed", "client_id": client.pk,
                              "kind": outcome.kind})
        return
    counts["refreshed"] += 1
    AvailabilityCache.objects.update_or_create(**key, defaults={
        "slots": half_hour_slots(outcome, now=now), "fetched_at": now,
        "stale_at": now + conf.availability_ttl(), "last_error": "", "failures": 0,
        "next_attempt_at": None})


def backoff_after(error: ProviderError, failures: int) -> timedelta:
    """How long a source that failed ``failures`` times in a row waits (jobs.conf)."""
    if isinstance(error, ProviderRejected):
        return conf.BACKOFF_REJECTED
    if isinstance(error, ProviderBadResponse):
        return conf.BACKOFF_UNSUPPORTED_DATA
    return min(timedelta(minutes=2 ** min(failures - 1, 10)), conf.BACKOFF_TRANSIENT_MAX)


def half_hour_slots(slots: list[Slot], *, now: datetime) -> list[dict]:
    """The free time cut into 30-minute slots starting from ``now`` for 30 days, as
    ``{"start", "end"}`` UTC ISO strings, sorted, each once."""
    step = timedelta(minutes=conf.SLOT_MINUTES)
    until = now + timedelta(days=conf.AVAILABILITY_DAYS)
    starts = set()
    for slot in slots:
        start = slot.start_at
        while start + step <= slot.end_at and start < until:
            if start >= now:
                starts.add(start.astimezone(UTC))
            start += step
    return [{"start": _iso(start), "end": _iso(start + step)} for start in sorted(starts)]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
