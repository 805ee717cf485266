"""Registers this app's job functions into the ledger and its webhook handlers into webhooks."""

from jobs import functions
from jobs.webhook_handlers import HANDLERS
from ledger.registry import Overlap, register_function
from webhooks.registry import register_handler


def register_all() -> None:
    register_function(
        "process-background-jobs", functions.process_background_jobs,
        timeout_seconds=120, retries=1, overlap=Overlap.SKIP,
    )
    register_function(
        "background-maintenance", functions.background_maintenance,
        timeout_seconds=300, retries=1, overlap=Overlap.SKIP,
    )
    # The outreach crons: one run at a time (concurrency 1), one success per dispatch key (the
    # default idempotency key); each service's time budget ends it inside its timeout.
    register_function(
        "cron-response-timing", functions.cron_response_timing,
        timeout_seconds=300, retries=2, concurrency_limit=1,
    )
    register_function(
        "cron-followups", functions.cron_followups,
        timeout_seconds=120, retries=1, concurrency_limit=1,
    )
    # The provider crons: timeouts above their largest time budget (timeBudgetMs at most 240 s;
    # appointment-reconcile APPOINTMENT_RECONCILE_TIME_BUDGET_SECONDS, 45 s by default); a bad
    # param (InvalidParam) fails at once, other failures get one more attempt.
    register_function(
        "cron-availability", functions.cron_availability,
        timeout_seconds=300, retries=1, concurrency_limit=1,
    )
    register_function(
        "cron-emailbison-availability-slot", functions.cron_emailbison_availability_slot,
        timeout_seconds=300, retries=1, concurrency_limit=1,
    )
    register_function(
        "cron-appointment-reconcile", functions.cron_appointment_reconcile,
        timeout_seconds=120, retries=1, concurrency_limit=1,
    )
    for event_type, handler in HANDLERS.items():
        register_handler(event_type, handler)
