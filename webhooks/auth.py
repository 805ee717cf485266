"""Webhook authentication: a shared token (EmailBison can only be given a URL) or a Standard
Webhooks signature. Several of each may be configured at once, for rotation.

Tokens are compared as bytes in constant time, so a non-ASCII header is a plain mismatch (401),
never an error (500). The ``standardwebhooks`` package raises ``ValueError`` as well as
``WebhookVerificationError`` on malformed headers: both are a refusal.
"""

import hmac
import logging

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from webhooks import conf
from webhooks.exceptions import WebhookAuthFailed, WebhookNotConfigured

logger = logging.getLogger(__name__)
TOKEN_HEADER = "X-Webhook-Token"
SIGNATURE_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


def auth_configured() -> bool:
    return bool(conf.tokens() or conf.signing_secrets())


def webhook_token_matches(*, headers, query) -> bool:
    """A configured token in ``X-Webhook-Token`` or ``?token=`` (comma-separated values allowed
    in the query, as some providers append their own)."""
    expected = [token.encode("utf-8") for token in conf.tokens()]
    if not expected:
        return False
    candidates = []
    if TOKEN_HEADER in headers:
        candidates.append(headers.get(TOKEN_HEADER, ""))
    for value in query.getlist("token") if hasattr(query, "getlist") else [query.get("token")]:
        if value:
            candidates.extend(value.split(","))
    matched = False
    for candidate in candidates:
        raw = candidate.strip().encode("utf-8", "surrogateescape")
        for token in expected:
            # No early exit: every comparison runs, whichever matches.
            matched |= hmac.compare_digest(raw, token)
    return matched


def has_signature_headers(headers) -> bool:
    return any(name in headers for name in SIGNATURE_HEADERS)


def webhook_signature_valid(*, body: bytes, headers) -> bool:
    """True when any configured secret verifies the Standard Webhooks signature of ``body``."""
    signed = {name: headers.get(name, "") for name in SIGNATURE_HEADERS}
    for secret in conf.signing_secrets():
        try:
            Webhook(secret).verify(body, signed, json_parse=False)
        except (WebhookVerificationError, ValueError):
            continue
        except Exception:  # a broken secret (bad base64) is a configuration error: checks say so
            logger.warning("webhook signing secret unusable",
                           extra={"action": "webhook_secret_invalid"})
            continue
        return True
    return False


def webhook_request_authenticate(*, headers, query, read_body) -> bytes | None:
    """Authenticate a request. Returns the body if it had to be read for a signature, else None.

    ``read_body()`` reads the body within the size limit (raising WebhookBodyTooLarge).
    Raises WebhookNotConfigured (503) when no credential is configured and unauthenticated
    delivery is not allowed, WebhookAuthFailed (401) for a wrong or missing credential.
    """
    if not auth_configured():
        if conf.allow_unauthenticated():
            return None
        raise WebhookNotConfigured
    if webhook_token_matches(headers=headers, query=query):
        return None
    if conf.signing_secrets() and has_signature_headers(headers):
        body = read_body()
        if webhook_signature_valid(body=body, headers=headers):
            return body
    raise WebhookAuthFailed
