"""The webhook queue's health check for ``/healthz/pipeline`` and ``manage.py health``."""

from django.utils import timezone

from ledger.health import CheckResult
from webhooks import conf
from webhooks.selectors import webhook_oldest_due_age_seconds


def check_webhook_backlog() -> CheckResult:
    """The oldest due event has waited less than ``WEBHOOK_BACKLOG_MAX_AGE_SECONDS``."""
    age = webhook_oldest_due_age_seconds(now=timezone.now())
    limit = conf.backlog_max_age_seconds()
    if age > limit:
        return CheckResult(False, f"the oldest due event has waited {age:.0f} s "
                                  f"(limit {limit} s); is a drainer running?")
    return CheckResult(True, f"oldest due event {age:.0f} s")
