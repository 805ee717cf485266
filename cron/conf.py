"""Cron settings, read at call time so override_settings works."""

from django.conf import settings

from cron.registry import CronDefinition

WINDOW_MIN_SECONDS = 15
WINDOW_MAX_SECONDS = 3600


def cron_secret() -> str:
    return getattr(settings, "CRON_SECRET", "") or ""


def metrics_token() -> str:
    """``/metrics`` requires ``Authorization: Bearer <token>`` when set."""
    return getattr(settings, "METRICS_TOKEN", "") or ""


def window_seconds(cron: CronDefinition) -> int:
    """The cron's window: its override setting if set, clamped to [15, 3600]."""
    value = int(getattr(settings, cron.window_setting, cron.window_seconds))
    return max(WINDOW_MIN_SECONDS, min(WINDOW_MAX_SECONDS, value))


def uses_queue(cron: CronDefinition) -> bool:
    return bool(getattr(settings, cron.use_queue_setting, cron.use_queue_default))


def forced_inline(cron: CronDefinition) -> bool:
    name = cron.force_inline_setting
    return bool(name and getattr(settings, name, False))


def emergency_fallback(cron: CronDefinition) -> bool:
    name = cron.emergency_fallback_setting
    return bool(name and getattr(settings, name, False))


def window_retention_days() -> int:
    return getattr(settings, "CRON_DISPATCH_WINDOW_RETENTION_DAYS", 30)
