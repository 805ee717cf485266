"""Job functions: module-level, payload in, a small JSON-able result out.

Each takes the event payload a dispatch hands it (CONTRACT.md "Event payload") and calls a
service; the runner records the run in the ledger whatever the mode.
"""

import time

from django.utils import timezone

from ledger.maintenance import maintenance_run


def process_background_jobs(payload: dict) -> dict:
    """Drain the background queues that exist, within a time budget."""
    started = time.monotonic()
    result = {"processed": 0, "succeeded": 0, "failed": 0, "retried": 0, "skipped": 0,
              "remaining": 0}
    result["durationMs"] = int((time.monotonic() - started) * 1000)
    return result


def background_maintenance(payload: dict) -> dict:
    """Recover abandoned runs and stale leases, report queue health, prune past retention."""
    started = time.monotonic()
    result = maintenance_run(now=timezone.now())
    result["durationMs"] = int((time.monotonic() - started) * 1000)
    return result
