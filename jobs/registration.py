"""Registers this app's job functions into the ledger (and, later, its webhook handlers)."""

from jobs import functions
from ledger.registry import register_function


def register_all() -> None:
    register_function(
        "process-background-jobs", functions.process_background_jobs,
        timeout_seconds=120, retries=1,
    )
    register_function(
        "background-maintenance", functions.background_maintenance,
        timeout_seconds=300, retries=1,
    )
