"""Ledger settings, read at call time so override_settings works. Defaults live here."""

from django.conf import settings

ERROR_MAX_CHARS = 4000  # errors are stored bounded (the old system stored unbounded text)
RESULT_MAX_BYTES = 16 * 1024  # a run's JSON result is small by contract
# A retry due within this many seconds waits in the worker; a later one is sent by the sweeper.
INLINE_RETRY_WAIT_MAX_SECONDS = 30


def grace_seconds() -> int:
    return getattr(settings, "LEDGER_GRACE_SECONDS", 60)


def heartbeat_seconds() -> float:
    return float(getattr(settings, "LEDGER_HEARTBEAT_SECONDS", 10))


def heartbeat_ttl_seconds() -> float:
    """A lease renewed by heartbeats lasts this long past the last beat."""
    return heartbeat_seconds() * 3 + 1


def requeue_after_seconds() -> int:
    return getattr(settings, "LEDGER_REQUEUE_AFTER_SECONDS", 120)


def run_retention_days() -> int:
    return getattr(settings, "LEDGER_RUN_RETENTION_DAYS", 30)


def max_timeout_seconds() -> int:
    return getattr(settings, "LEDGER_MAX_TIMEOUT_SECONDS", 900)


def prune_batch_size() -> int:
    return getattr(settings, "LEDGER_PRUNE_BATCH_SIZE", 500)
