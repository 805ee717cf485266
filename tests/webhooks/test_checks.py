"""System checks for the webhook configuration."""

from django.test import override_settings

from tests.webhooks.helpers import SECRET
from webhooks.checks import check_webhook_auth, check_webhook_signing_secrets


@override_settings(DEBUG=False, WEBHOOK_TOKEN=[], WEBHOOK_SIGNING_SECRET=[])
def test_check__no_auth_outside_debug_warns():
    """Neither token nor secret outside DEBUG: webhooks.W001."""
    assert [w.id for w in check_webhook_auth()] == ["webhooks.W001"]


@override_settings(DEBUG=False, WEBHOOK_TOKEN=[], WEBHOOK_SIGNING_SECRET=[],
                   WEBHOOK_ALLOW_UNAUTHENTICATED=True)
def test_check__unauthenticated_allowed_outside_debug_warns():
    """Unauthenticated delivery allowed outside DEBUG: webhooks.W002."""
    assert [w.id for w in check_webhook_auth()] == ["webhooks.W002"]


@override_settings(DEBUG=True, WEBHOOK_TOKEN=[], WEBHOOK_SIGNING_SECRET=[])
def test_check__debug_is_quiet():
    """Local development (DEBUG) is not nagged."""
    assert check_webhook_auth() == []


@override_settings(DEBUG=False, WEBHOOK_TOKEN=["t"], WEBHOOK_SIGNING_SECRET=[])
def test_check__token_configured_is_quiet():
    """A token is enough."""
    assert check_webhook_auth() == []


@override_settings(WEBHOOK_SIGNING_SECRET=[SECRET, "whsec_***not-base64***"])
def test_check__unusable_signing_secret_is_an_error():
    """A secret that is not whsec_ + base64 is reported by position."""
    errors = check_webhook_signing_secrets()
    assert [e.id for e in errors] == ["webhooks.E001"]
    assert "#2" in errors[0].msg
