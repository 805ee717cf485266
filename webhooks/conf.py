"""Webhook settings, read at call time so override_settings works. Defaults live here."""

from django.conf import settings

ERROR_MAX_CHARS = 4000
BACKOFF_CAP_SECONDS = 15 * 60
SIGNATURE_TOLERANCE_SECONDS = 5 * 60  # enforced by standardwebhooks
DOORBELL_STALE_SECONDS = 120  # a doorbell pending this long is assumed lost (Redis) and re-rung
SUPPORTED_PROVIDER = "inboxxia"


def tokens() -> list[str]:
    return list(getattr(settings, "WEBHOOK_TOKEN", []) or [])


def signing_secrets() -> list[str]:
    return list(getattr(settings, "WEBHOOK_SIGNING_SECRET", []) or [])


def allow_unauthenticated() -> bool:
    return bool(getattr(settings, "WEBHOOK_ALLOW_UNAUTHENTICATED", False))


def max_body_bytes() -> int:
    return int(getattr(settings, "WEBHOOK_MAX_BODY_BYTES", 1024 * 1024))


def inline_event_types() -> set[str]:
    return {t.upper() for t in getattr(settings, "WEBHOOK_INLINE_EVENT_TYPES", []) or []}


def email_sent_async() -> bool:
    return bool(getattr(settings, "INBOXXIA_EMAIL_SENT_ASYNC", True))


def max_attempts() -> int:
    return int(getattr(settings, "WEBHOOK_MAX_ATTEMPTS", 8))


def lease_seconds() -> int:
    return int(getattr(settings, "WEBHOOK_LEASE_SECONDS", 120))


def batch_size() -> int:
    return int(getattr(settings, "WEBHOOK_DRAIN_BATCH_SIZE", 50))


def doorbell_batch_size() -> int:
    return int(getattr(settings, "WEBHOOK_DOORBELL_BATCH_SIZE", 5))


def doorbell_budget_seconds() -> float:
    return float(getattr(settings, "WEBHOOK_DOORBELL_BUDGET_SECONDS", 10))


def drain_budget_seconds() -> float:
    return float(getattr(settings, "WEBHOOK_DRAIN_BUDGET_SECONDS", 45))


def retention_days() -> int:
    return int(getattr(settings, "WEBHOOK_EVENT_RETENTION_DAYS", 30))


def prune_batch_size() -> int:
    return int(getattr(settings, "WEBHOOK_PRUNE_BATCH_SIZE", 500))


def backlog_max_age_seconds() -> int:
    """``/healthz/pipeline`` fails when the oldest due event has waited longer than this."""
    return int(getattr(settings, "WEBHOOK_BACKLOG_MAX_AGE_SECONDS", 300))
