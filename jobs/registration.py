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
    for event_type, handler in HANDLERS.items():
        register_handler(event_type, handler)
