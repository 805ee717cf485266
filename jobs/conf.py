"""Settings of the outreach crons, read at call time so override_settings works. Defaults here.

The lookback, batch and quiet-days figures are DOMAIN.md's; the budgets keep a run inside its
function's timeout (jobs/registration.py) with room to record its batch.
"""

from django.conf import settings

RESPONSE_TIMING_LOOKBACK_DAYS = 90
RESPONSE_TIMING_BATCH_SIZE = 200
FOLLOWUPS_BATCH_SIZE = 200
FOLLOWUPS_QUIET_DAYS = 7  # a lead quiet this long after a reply gets its sequence back


def response_timing_budget_seconds() -> float:
    return float(getattr(settings, "RESPONSE_TIMING_TIME_BUDGET_SECONDS", 240))


def followups_budget_seconds() -> float:
    return float(getattr(settings, "FOLLOWUPS_TIME_BUDGET_SECONDS", 90))


def followups_lock_seconds() -> int:
    """How long the SQLite lease of an inline followups run lasts if its holder dies."""
    return int(getattr(settings, "FOLLOWUPS_LOCK_SECONDS", 180))
