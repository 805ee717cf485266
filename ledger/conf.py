"""Ledger settings, read at call time so override_settings works. Defaults live here."""

from django.conf import settings

ERROR_MAX_CHARS = 4000  # errors are stored bounded (the old system stored unbounded text)
RESULT_MAX_BYTES = 16 * 1024  # a run's JSON result is small by contract
# A next attempt due within this many seconds waits in the worker (the default backoff's waits,
# 2, 4 and 8 s plus jitter, fit); a later one is left to the sweeper, which sends it when due.
INLINE_RETRY_WAIT_MAX_SECONDS = 10
# Room for the runner's own bookkeeping (claim, finish, hand-on) around a function's timeout.
BOOKKEEPING_SECONDS = 15


def task_timeout_seconds(timeout_seconds: int) -> int:
    """Django-Q's limit for one delivery of a run: the wait for a due attempt, the function's own
    timeout (enforced by the runner), and bookkeeping. Q_CLUSTER ``retry`` must exceed it."""
    return int(timeout_seconds) + INLINE_RETRY_WAIT_MAX_SECONDS + BOOKKEEPING_SECONDS


def grace_seconds() -> int:
    return getattr(settings, "LEDGER_GRACE_SECONDS", 60)


def heartbeat_seconds() -> float:
    return float(getattr(settings, "LEDGER_HEARTBEAT_SECONDS", 10))


def heartbeat_ttl_seconds() -> float:
    """A lease renewed by heartbeats lasts this long past the last beat."""
    return heartbeat_seconds() * 3 + 1


def requeue_after_seconds() -> int:
    """A queued run whose delivery went out this long ago and never started is sent again
    (Redis loses a task held by a dying cluster). On the ORM broker Django-Q redelivers after
    ``retry`` itself, so the sweeper waits ``retry`` longer there (a purged task row)."""
    return getattr(settings, "LEDGER_REQUEUE_AFTER_SECONDS", 120)


def run_retention_days() -> int:
    return getattr(settings, "LEDGER_RUN_RETENTION_DAYS", 30)


def max_timeout_seconds() -> int:
    return getattr(settings, "LEDGER_MAX_TIMEOUT_SECONDS", 900)


def prune_batch_size() -> int:
    return getattr(settings, "LEDGER_PRUNE_BATCH_SIZE", 500)
