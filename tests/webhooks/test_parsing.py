"""Dedupe keys are injective: one namespace per source, long ids hashed whole, ids compared as
sent (issue 22, item 3)."""

import hashlib
import json

import pytest
from django.test import Client

from jobs.models import Message
from tests.webhooks.helpers import fixture_body, fixture_payload, post
from webhooks.models import WebhookEvent
from webhooks.parsing import HASHED_PREFIX, KEY_MAX_CHARS, parse_event, storable
from webhooks.processing import webhook_events_drain


def sent_with_id(scheduled_id, *, lead: str = "ada@example.com") -> bytes:
    payload = fixture_payload("email_sent__basic")
    payload["data"]["scheduled_email"]["id"] = scheduled_id
    payload["data"]["lead"]["email"] = lead
    return json.dumps(payload).encode()


def key(body: bytes, webhook_id: str = "") -> str:
    return parse_event(body=body, webhook_id=webhook_id).dedupe_key


def test_key__contract_formats_for_normal_ids():
    """CONTRACT.md's EMAIL_SENT and reply keys are kept exactly."""
    assert key(fixture_body("email_sent__basic")) == "inboxxia:EMAIL_SENT:9001"
    assert key(fixture_body("lead_replied__basic")) == "inboxxia:LEAD_REPLIED:7001"


def test_key__header_and_body_hash_have_their_own_namespaces():
    """A webhook-id header and a body hash can never equal a provider key."""
    body = fixture_body("email_opened__basic")
    assert key(body, "inboxxia:EMAIL_SENT:42") == "webhook-id:inboxxia:EMAIL_SENT:42"
    assert key(body) == "sha256:" + hashlib.sha256(body).hexdigest()


@pytest.mark.django_db
def test_ingest__webhook_id_cannot_take_a_provider_key():
    """The reproducer: an EMAIL_OPENED whose webhook-id is inboxxia:EMAIL_SENT:42 no longer
    makes the real EMAIL_SENT 42 a duplicate."""
    opened = post(Client(), fixture_body("email_opened__basic"),
                  HTTP_WEBHOOK_ID="inboxxia:EMAIL_SENT:42")
    sent = post(Client(), sent_with_id(42))
    assert opened.status_code == sent.status_code == 202
    assert sent.json()["duplicate"] is False
    assert WebhookEvent.objects.count() == 2


@pytest.mark.django_db
def test_ingest__long_ids_are_distinct_keys_and_distinct_messages(workspace):
    """Eight ids sharing their first 64 (or 255) characters are eight events and eight
    messages: never cut, hashed whole when too long for the column."""
    stem = "x" * 300
    bodies = [sent_with_id(f"{stem}{n}", lead=f"lead{n}@example.com") for n in range(8)]
    responses = [post(Client(), body) for body in bodies]
    assert [r.status_code for r in responses] == [202] * 8
    keys = {r.json()["dedupeKey"] for r in responses}
    assert len(keys) == 8
    assert all(k.startswith(HASHED_PREFIX) and len(k) <= KEY_MAX_CHARS for k in keys)
    webhook_events_drain(budget_seconds=30)
    assert Message.objects.values("inboxxia_scheduled_email_id").distinct().count() == 8
    assert set(Message.objects.values_list("lead__email", flat=True)) == {
        f"lead{n}@example.com" for n in range(8)}


@pytest.mark.django_db
def test_ingest__id_of_65_characters_is_not_cut_to_64(workspace):
    """Two ids that differ only in their 65th character are two messages."""
    for n in range(2):
        post(Client(), sent_with_id("y" * 64 + str(n), lead=f"l{n}@example.com"))
    webhook_events_drain(budget_seconds=10)
    assert Message.objects.count() == 2


@pytest.mark.django_db
def test_ingest__lone_surrogates_are_distinct_ids():
    """\\ud800 and \\udfff in an id are two events, not one U+FFFD "duplicate"."""
    template = fixture_body("email_sent__basic").replace(b'"id": 9001', b'"id": "a%s"')
    first = post(Client(), template % b"\\ud800")
    second = post(Client(), template % b"\\udfff")
    assert first.status_code == second.status_code == 202
    assert second.json()["duplicate"] is False
    assert first.json()["dedupeKey"] != second.json()["dedupeKey"]
    again = post(Client(), template % b"\\ud800")
    assert again.json()["duplicate"] is True


@pytest.mark.parametrize("value", ["a\ud800", "a\udfff", "a\x00", "a\ufffd", "a",
                                   HASHED_PREFIX + "0" * 64, "z" * 255, "z" * 256])
def test_storable__injective_and_bounded(value):
    """Kept values never carry the marker; everything else is hashed whole, within bounds."""
    stored = storable(value, max_chars=64)
    assert len(stored) <= 64
    kept = stored == value
    assert kept != stored.startswith(HASHED_PREFIX)
    others = {"a\ud800", "a\udfff", "a\x00", "a\ufffd", "a", HASHED_PREFIX + "0" * 64,
              "z" * 255, "z" * 256} - {value}
    assert stored not in {storable(other, max_chars=64) for other in others}
