"""Job functions: module-level, payload in, a small JSON-able result out.

Each takes the event payload a dispatch hands it (CONTRACT.md "Event payload") and calls a
service; the runner records the run in the ledger whatever the mode.
"""

import time

from django.utils import timezone

from jobs import conf
from jobs.appointment_reconcile import appointments_reconcile
from jobs.availability import availability_refresh
from jobs.followups import followups_run
from jobs.params import param_bool, param_int, param_optional_id, params_of
from jobs.response_timing import response_timing_record
from jobs.slot_offers import slot_offers_run
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


def cron_availability(payload: dict) -> dict:
    """Refresh due availability caches (jobs.availability); params ``timeBudgetMs``,
    ``concurrency``."""
    params = params_of(payload)
    return availability_refresh(
        now=timezone.now(),
        time_budget_ms=param_int(params, "timeBudgetMs", conf.AVAILABILITY_TIME_BUDGET_MS),
        concurrency=param_int(params, "concurrency", conf.AVAILABILITY_CONCURRENCY))


def cron_emailbison_availability_slot(payload: dict) -> dict:
    """Offer slots to leads due their first email (jobs.slot_offers); params ``dryRun``,
    ``timeBudgetMs``."""
    params = params_of(payload)
    return slot_offers_run(
        now=timezone.now(),
        time_budget_ms=param_int(params, "timeBudgetMs", conf.SLOT_TIME_BUDGET_MS),
        dry_run=param_bool(params, "dryRun"))


def cron_appointment_reconcile(payload: dict) -> dict:
    """Reconcile hot, then warm leads' appointments (jobs.appointment_reconcile); params
    ``workspaceLimit``, ``leadsPerWorkspace``, ``staleDays``, ``clientId``, ``dryRun``."""
    params = params_of(payload)
    return appointments_reconcile(
        now=timezone.now(),
        workspace_limit=param_int(params, "workspaceLimit", conf.RECONCILE_WORKSPACE_LIMIT),
        leads_per_workspace=param_int(params, "leadsPerWorkspace",
                                      conf.RECONCILE_LEADS_PER_WORKSPACE),
        stale_days=param_int(params, "staleDays", conf.RECONCILE_STALE_DAYS),
        client_id=param_optional_id(params, "clientId"),
        dry_run=param_bool(params, "dryRun"))
