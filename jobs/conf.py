"""Settings of the outreach crons, read at call time so override_settings works. Defaults here.

The lookback, batch and quiet-days figures are DOMAIN.md's; the budgets keep a run inside its
function's timeout (jobs/registration.py) with room to record its batch.
"""

from datetime import timedelta

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


# availability (jobs/availability.py)
AVAILABILITY_DAYS = 30
SLOT_MINUTES = 30
AVAILABILITY_TIME_BUDGET_MS = (10_000, 1_000, 240_000)  # param default, minimum, maximum
AVAILABILITY_CONCURRENCY = (4, 1, 16)
# A failing source waits before it is asked again: a day when the provider refuses the account
# (401/403/404: not set up there), two hours when it answers data this client cannot read, and
# 2^(failures-1) minutes up to an hour after a timeout, 429, 5xx or unreachable host.
BACKOFF_REJECTED = timedelta(days=1)
BACKOFF_UNSUPPORTED_DATA = timedelta(hours=2)
BACKOFF_TRANSIENT_MAX = timedelta(hours=1)

# emailbison-availability-slot (jobs/slot_offers.py)
SLOT_TIME_BUDGET_MS = (20_000, 1_000, 240_000)
SLOT_DUE_WITHIN = timedelta(minutes=15)  # leads whose first email is due this soon
SLOT_REOFFER_AFTER = timedelta(hours=6)  # no second offer to a lead within this
SLOT_MIN_NOTICE = timedelta(hours=12)  # an offered slot starts at least this far ahead
SLOT_CUSTOM_VARIABLE = "availability_slot"

# appointment-reconcile (jobs/appointment_reconcile.py)
RECONCILE_WORKSPACE_LIMIT = (20, 1, 500)
RECONCILE_LEADS_PER_WORKSPACE = (50, 1, 1000)
RECONCILE_STALE_DAYS = (7, 1, 365)
RECONCILE_HOT_RECHECK = timedelta(minutes=1)
RECONCILE_BREAKER_MIN_CHECKS = 5
RECONCILE_BREAKER_ERROR_RATE = 0.5


def availability_ttl() -> timedelta:
    """A refreshed cache is fresh this long; the next run after it refreshes it again."""
    return timedelta(seconds=int(getattr(settings, "AVAILABILITY_CACHE_TTL_SECONDS", 15 * 60)))


def availability_sources_per_run() -> int:
    return int(getattr(settings, "AVAILABILITY_SOURCES_PER_RUN", 500))


def slot_clients_per_run() -> int:
    return int(getattr(settings, "SLOT_OFFER_CLIENTS_PER_RUN", 100))


def slot_leads_per_client() -> int:
    return int(getattr(settings, "SLOT_OFFER_LEADS_PER_CLIENT", 200))


def slot_lead_lookup_pages() -> int:
    """EmailBison pages read per campaign to find a lead's EmailBison id by its email."""
    return int(getattr(settings, "SLOT_OFFER_LEAD_LOOKUP_PAGES", 20))


def reconcile_time_budget_seconds() -> float:
    return float(getattr(settings, "APPOINTMENT_RECONCILE_TIME_BUDGET_SECONDS", 45))
