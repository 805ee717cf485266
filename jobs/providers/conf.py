"""Provider client settings, read at call time so override_settings works. Defaults live here."""

from django.conf import settings


def timeout_seconds() -> float:
    """One request's limit (connect, read, write, pool), further cut to the caller's deadline."""
    return float(getattr(settings, "PROVIDER_TIMEOUT_SECONDS", 10.0))


def max_retries() -> int:
    """Further attempts after the first, on 429, 5xx and unreachable hosts."""
    return int(getattr(settings, "PROVIDER_MAX_RETRIES", 2))


def backoff_base_seconds() -> float:
    """Attempt n waits base * 2^(n-1) (plus up to 25 % jitter) unless ``Retry-After`` says."""
    return float(getattr(settings, "PROVIDER_BACKOFF_BASE_SECONDS", 0.5))


def backoff_max_seconds() -> float:
    """No wait is longer than this: a ``Retry-After`` beyond it fails the call at once."""
    return float(getattr(settings, "PROVIDER_BACKOFF_MAX_SECONDS", 30.0))
