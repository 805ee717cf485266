"""Cron request authentication: the shared CRON_SECRET, compared in constant time."""

import hmac

from cron import conf


class CronNotConfigured(Exception):
    """CRON_SECRET is unset or blank: the endpoint refuses every request."""


def cron_request_authenticated(*, headers) -> bool:
    """``Authorization: Bearer <secret>`` or ``X-Cron-Secret: <secret>``.

    Header values are compared as bytes, so a non-ASCII header is a plain mismatch (401),
    never a TypeError (500). Raises CronNotConfigured when there is no secret to compare with.
    """
    secret = conf.cron_secret()
    if not secret:
        raise CronNotConfigured
    expected = secret.encode("utf-8")
    candidates = []
    authorization = headers.get("Authorization", "")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() == "bearer":
        candidates.append(token.strip())
    if "X-Cron-Secret" in headers:
        candidates.append(headers.get("X-Cron-Secret", "").strip())
    return any(
        hmac.compare_digest(candidate.encode("utf-8", "surrogateescape"), expected)
        for candidate in candidates
    )
