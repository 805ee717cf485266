"""The webhook route under the shared security suite, plus token and signature cases."""

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from django.test import Client, override_settings
from freezegun import freeze_time

from tests.security_suite import AuthenticatedRouteSuite
from tests.webhooks.helpers import (
    OTHER_SECRET,
    SECRET,
    TOKEN,
    URL,
    fixture_body,
    post,
    signature_headers,
)
from webhooks.models import WebhookEvent

BODY = fixture_body("email_sent__basic")
SIGNED_ONLY = override_settings(WEBHOOK_TOKEN=[], WEBHOOK_SIGNING_SECRET=[SECRET])


class TestWebhookRouteSecurity(AuthenticatedRouteSuite):
    url = URL
    refused_methods = ("PUT", "PATCH", "DELETE")
    credential = TOKEN

    def credential_headers(self, value):
        return [{"HTTP_X_WEBHOOK_TOKEN": value}, {"QUERY_STRING": f"token={quote(value)}"},
                {"QUERY_STRING": f"token={quote(value)}&token=,"}]

    def stored_rows(self):
        return WebhookEvent.objects.count()

    def request(self, client, method="POST", **headers):
        if method == "POST":
            return client.post(self.url, data=BODY, content_type="application/json", **headers)
        return getattr(client, method.lower())(self.url, **headers)

    def good_headers(self):
        return {"HTTP_X_WEBHOOK_TOKEN": TOKEN}

    def wrong_headers(self):
        return [{"HTTP_X_WEBHOOK_TOKEN": "wrong"}, {"HTTP_X_WEBHOOK_TOKEN": ""},
                {"HTTP_X_WEBHOOK_TOKEN": TOKEN + "x"}, {"HTTP_X_WEBHOOK_TOKEN": TOKEN[:-1]},
                {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}, {"QUERY_STRING": "token=wrong"}]

    def non_ascii_headers(self):
        return [{"HTTP_X_WEBHOOK_TOKEN": "tést-webhook-token"},
                {"HTTP_X_WEBHOOK_TOKEN": "\u00ff" * 40},
                {"QUERY_STRING": "token=t%C3%A9st"}]


@pytest.mark.django_db
def test_token__query_parameter_is_accepted():
    """EmailBison can only be given a URL: ?token= authenticates."""
    response = post(Client(), BODY, token=None, query=f"token={TOKEN}")
    assert response.status_code == 202, response.content


@pytest.mark.django_db
@override_settings(WEBHOOK_TOKEN=["new-token", "old-token"])
def test_token__rotation_accepts_every_configured_token():
    """During rotation both the old and the new token work; others do not."""
    assert post(Client(), BODY, token="old-token").status_code == 202
    assert post(Client(), BODY, token="new-token").status_code == 202
    assert post(Client(), BODY, token=TOKEN).status_code == 401


@pytest.mark.django_db
@override_settings(WEBHOOK_TOKEN=[], WEBHOOK_SIGNING_SECRET=[])
def test_auth__nothing_configured_is_503():
    """Neither a token nor a secret: refused with 503 and nothing stored."""
    response = post(Client(), BODY)
    assert response.status_code == 503
    assert response.json()["success"] is False
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db
@override_settings(WEBHOOK_TOKEN=[], WEBHOOK_SIGNING_SECRET=[], WEBHOOK_ALLOW_UNAUTHENTICATED=True)
def test_auth__unauthenticated_allowed_explicitly():
    """WEBHOOK_ALLOW_UNAUTHENTICATED=true with no credential configured accepts deliveries."""
    assert post(Client(), BODY, token=None).status_code == 202


@pytest.mark.django_db
@override_settings(WEBHOOK_ALLOW_UNAUTHENTICATED=True)
def test_auth__allow_unauthenticated_does_not_bypass_a_configured_token():
    """The flag only matters when nothing is configured."""
    assert post(Client(), BODY, token="wrong").status_code == 401


@pytest.mark.django_db
@SIGNED_ONLY
def test_signature__valid_is_accepted():
    """A Standard Webhooks signature made with the secret is accepted."""
    response = post(Client(), BODY, token=None, **signature_headers(BODY))
    assert response.status_code == 202, response.content


@pytest.mark.django_db
@SIGNED_ONLY
def test_signature__wrong_secret_is_401():
    """Signed with another secret: refused."""
    headers = signature_headers(BODY, secret=OTHER_SECRET)
    assert post(Client(), BODY, token=None, **headers).status_code == 401


@pytest.mark.django_db
@override_settings(WEBHOOK_TOKEN=[], WEBHOOK_SIGNING_SECRET=[OTHER_SECRET, SECRET])
def test_signature__rotation_accepts_every_configured_secret():
    """Two secrets configured: a signature by either verifies."""
    for secret in (SECRET, OTHER_SECRET):
        headers = signature_headers(BODY, secret=secret, msg_id=f"msg-{secret[-6:]}")
        assert post(Client(), BODY, token=None, **headers).status_code == 202


@pytest.mark.django_db
@SIGNED_ONLY
def test_signature__tampered_body_is_401():
    """One byte changed after signing: refused, nothing stored."""
    headers = signature_headers(BODY)
    tampered = BODY.replace(b"9001", b"9002")
    assert post(Client(), tampered, token=None, **headers).status_code == 401
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db
@SIGNED_ONLY
def test_signature__reserialised_json_is_401():
    """Same JSON, different bytes (re-serialised): the signature covers bytes, so refused."""
    import json

    headers = signature_headers(BODY)
    reserialised = json.dumps(json.loads(BODY), separators=(",", ":")).encode()
    assert reserialised != BODY
    assert post(Client(), reserialised, token=None, **headers).status_code == 401


@pytest.mark.django_db
@SIGNED_ONLY
@pytest.mark.parametrize(("offset", "status"), [(-299, 202), (299, 202), (-301, 401),
                                                 (301, 401)])
def test_signature__timestamp_tolerance_is_five_minutes(offset, status):
    """±299 s from now is accepted, ±301 s refused."""
    now = datetime(2026, 2, 17, 19, 31, tzinfo=UTC)
    headers = signature_headers(BODY, timestamp=now + timedelta(seconds=offset))
    with freeze_time(now):
        response = post(Client(), BODY, token=None, **headers)
    assert response.status_code == status, response.content


@pytest.mark.django_db
@SIGNED_ONLY
@pytest.mark.parametrize("signature", ["v1abc", "v1,a,b", "v1,!!!notbase64", "", "v1," + "A" * 65536,
                                       " ".join(["v1,abc"] * 6000), "v2,abc", "v1,\u00e9"])
def test_signature__malformed_headers_are_401_not_500(signature):
    """Malformed signatures (the package raises ValueError for some) are 401, never 500."""
    headers = signature_headers(BODY)
    headers["HTTP_WEBHOOK_SIGNATURE"] = signature
    assert post(Client(), BODY, token=None, **headers).status_code == 401


@pytest.mark.django_db
@SIGNED_ONLY
@pytest.mark.parametrize("timestamp", ["", "soon", "nan", "1e400", "-1", "\u00e9"])
def test_signature__malformed_timestamps_are_401(timestamp):
    """A timestamp that is not a recent number is refused."""
    headers = signature_headers(BODY)
    headers["HTTP_WEBHOOK_TIMESTAMP"] = timestamp
    assert post(Client(), BODY, token=None, **headers).status_code == 401


@pytest.mark.django_db
@SIGNED_ONLY
def test_signature__several_signatures_one_valid_is_accepted():
    """The header may carry several space-separated signatures; one valid is enough."""
    headers = signature_headers(BODY)
    valid = headers["HTTP_WEBHOOK_SIGNATURE"]
    headers["HTTP_WEBHOOK_SIGNATURE"] = f"v1,bm9wZQ== v2,abc {valid}"
    assert post(Client(), BODY, token=None, **headers).status_code == 202


@pytest.mark.django_db
@SIGNED_ONLY
def test_signature__non_utf8_body_is_401_not_500():
    """A signed body that is not UTF-8 cannot be verified by the package: refused, no 500."""
    body = b'{"event": {"type": "EMAIL_OPENED"}, "x": "\xff"}'
    headers = signature_headers(b'{"a": 1}')
    assert post(Client(), body, token=None, **headers).status_code == 401


@pytest.mark.django_db
@SIGNED_ONLY
def test_signature__webhook_id_is_the_dedupe_key_for_other_types():
    """A signed EMAIL_OPENED is deduplicated by its webhook-id header."""
    body = fixture_body("email_opened__basic")
    first = post(Client(), body, token=None, **signature_headers(body, msg_id="msg_open_1"))
    again = post(Client(), body, token=None, **signature_headers(body, msg_id="msg_open_1"))
    assert first.json()["dedupeKey"] == "webhook-id:msg_open_1"
    assert again.json()["duplicate"] is True
    assert again.json()["eventId"] == first.json()["eventId"]


@pytest.mark.django_db
def test_get__lists_supported_events():
    """GET answers ok with the seven event types the jobs app handles."""
    response = Client().get(URL)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "supportedEvents": [
        "EMAIL_SENT", "LEAD_REPLIED", "LEAD_INTERESTED", "UNTRACKED_REPLY_RECEIVED",
        "EMAIL_OPENED", "EMAIL_BOUNCED", "LEAD_UNSUBSCRIBED"]}
