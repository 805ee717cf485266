"""Job functions: module-level, payload in, a small JSON-able result out.

Each takes the event payload a dispatch hands it (CONTRACT.md "Event payload") and calls a
service; the runner records the run in the ledger whatever the mode.
"""

import time

from django.utils import timezone

from jobs.followups import followups_run
from jobs.response_timing import response_timing_record
from ledger.maintenance import maintenance_run
from webhooks.processing import webhook_events_drain


def process_background_jobs(payload: dict) -> dict:
    """Drain due webhook events within the time budget (WEBHOOK_DRAIN_BUDGET_SECONDS)."""
    started = time.monotonic()
    counts = webhook_events_drain()
    result = {name: counts[name] for name in ("processed", "succeeded", "failed", "retried",
                                              "skipped", "remaining")}
    result["durationMs"] = int((time.monotonic() - started) * 1000)
    return result


def background_maintenance(payload: dict) -> dict:
    """Recover abandoned runs and stale leases, report queue health, prune past retention."""
    started = time.monotonic()
    result = maintenance_run(now=timezone.now())
    result["durationMs"] = int((time.monotonic() - started) * 1000)
    return result


def cron_response_timing(payload: dict) -> dict:
    """Record how each inbound message of the lookback was answered (jobs.response_timing)."""
    return response_timing_record(now=timezone.now())


def cron_followups(payload: dict) -> dict:
    """Advance the follow-up sequences under the followups lock (jobs.followups)."""
    return followups_run(now=timezone.now())
