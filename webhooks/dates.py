"""Provider datetimes, checked once: at ingest (a bad one is a 400 naming the field) and again by
the handlers (an event stored before the check existed fails at once, never retried).

A provider time is an ISO 8601 string (naive means UTC) within SANE_RANGE once in UTC. Outside it
PostgreSQL stores what Python cannot read back (``0001-01-01T00:00:00+10:00`` is year 1 BC in
UTC), and an impossible date (``2026-02-30``) fails the same way on every attempt. Absent, null
or "" means "not given": the handler uses the time the event was received.
"""

from datetime import UTC, datetime

from django.utils.dateparse import parse_datetime

from webhooks.exceptions import WebhookBadRequest

SANE_RANGE = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC))


class InvalidProviderDatetime(WebhookBadRequest):
    """a provider time is not an ISO 8601 datetime between 1970 and 2100"""


def provider_datetime(value, *, field: str) -> datetime | None:
    """``value`` as an aware UTC datetime, None when not given; InvalidProviderDatetime (a
    WebhookBadRequest: 400 at ingest, terminal in a handler) naming ``field`` otherwise."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidProviderDatetime(f"{field} is not an ISO 8601 string")
    try:
        parsed = parse_datetime(value.strip())
    except ValueError:  # well formed but impossible, e.g. 2026-02-30
        parsed = None
    if parsed is None:
        raise InvalidProviderDatetime(f"{field} is not a valid ISO 8601 datetime")
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except OverflowError:  # year 1 with a positive offset, 9999 with a negative one
        parsed = None
    low, high = SANE_RANGE
    if parsed is None or not low <= parsed < high:
        raise InvalidProviderDatetime(f"{field} is outside 1970-01-01 .. 2100-01-01 UTC")
    return parsed

