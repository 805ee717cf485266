"""Properties of the webhook parser, the dedupe key and provider dates (issue 22)."""

import hashlib
import json
from datetime import UTC

from hypothesis import given
from hypothesis import strategies as st

from tests.properties.strategies import BOUNDED, bodies, events, encode, ids, nasty_text, times
from webhooks.dates import SANE_RANGE, InvalidProviderDatetime, provider_datetime
from webhooks.exceptions import WebhookBadRequest
from webhooks.parsing import (
    KEY_MAX_CHARS,
    dedupe_key_of,
    parse_event,
    sent_id,
    storable,
)
from webhooks.registry import REPLY_EVENT_TYPES
from webhooks.text import clean_text


@BOUNDED
@given(body=bodies, webhook_id=nasty_text)
def test_parse_event__any_bytes_parse_or_are_a_bad_request(body, webhook_id):
    """Whatever arrives, the parser answers an event or a WebhookBadRequest (400), and a key
    that fits its column as clean text."""
    try:
        parsed = parse_event(body=body, webhook_id=webhook_id)
    except WebhookBadRequest:
        return
    assert 0 < len(parsed.dedupe_key) <= KEY_MAX_CHARS
    assert clean_text(parsed.dedupe_key) == parsed.dedupe_key
    assert clean_text(parsed.webhook_id) == parsed.webhook_id


def identity(event_type: str, source_id, webhook_id: str, body: bytes):
    """What makes two deliveries the same event (CONTRACT.md), written independently of the
    parser: the provider id as sent for EMAIL_SENT and replies, else the header, else the
    body."""
    if event_type == "EMAIL_SENT":
        return ("sent", sent_id(source_id))
    if event_type in REPLY_EVENT_TYPES:
        return ("reply", event_type, sent_id(source_id))
    if webhook_id.strip():
        return ("header", webhook_id.strip())
    return ("body", hashlib.sha256(body).hexdigest())


deliveries = st.tuples(st.sampled_from(["EMAIL_SENT", "LEAD_REPLIED", "LEAD_INTERESTED",
                                        "EMAIL_OPENED", "OTHER"]),
                       ids, nasty_text, st.binary(max_size=20))


def key(delivery):
    event_type, source_id, webhook_id, body = delivery
    payload = {"data": {"scheduled_email": {"id": source_id}, "reply": {"id": source_id}}}
    return dedupe_key_of(payload=payload, event_type=event_type, body=body,
                         webhook_id=webhook_id)


@BOUNDED
@given(first=deliveries, second=deliveries)
def test_dedupe_key__injective(first, second):
    """Two deliveries share a key exactly when they are the same event."""
    try:
        keys = key(first), key(second)
    except WebhookBadRequest:  # an id the contract requires is missing
        return
    assert (keys[0] == keys[1]) == (identity(*first) == identity(*second)), (first, second)


@BOUNDED
@given(values=st.lists(nasty_text, min_size=2, max_size=6, unique=True),
       max_chars=st.sampled_from([64, 255]))
def test_storable__injective_bounded_and_clean(values, max_chars):
    """Distinct values stay distinct, fit the column, and are storable text."""
    stored = [storable(value, max_chars=max_chars) for value in values]
    assert len(set(stored)) == len(values)
    assert all(len(s) <= max_chars and clean_text(s) == s for s in stored)


@BOUNDED
@given(value=times)
def test_provider_datetime__in_range_or_refused(value):
    """A provider time is None, an aware UTC time within the sane range, or refused."""
    try:
        parsed = provider_datetime(value, field="f")
    except InvalidProviderDatetime:
        return
    if parsed is not None:
        assert parsed.tzinfo == UTC and SANE_RANGE[0] <= parsed < SANE_RANGE[1]


@BOUNDED
@given(payload=events())
def test_parse_event__accepted_events_have_storable_times(payload):
    """An accepted event's times can be stored and read back: checked at ingest."""
    try:
        parsed = parse_event(body=encode(payload), webhook_id="")
    except WebhookBadRequest:
        return
    for section_name, names in (("scheduled_email", ("sent_at",)),
                                ("reply", ("date_received", "created_at"))):
        node = parsed.payload.get("data")
        node = node.get(section_name) if isinstance(node, dict) else None
        if parsed.event_type in ("EMAIL_SENT", *REPLY_EVENT_TYPES) and isinstance(node, dict):
            if (section_name == "scheduled_email") == (parsed.event_type == "EMAIL_SENT"):
                for name in names:
                    provider_datetime(node.get(name), field=name)  # does not raise


def test_encode__keeps_lone_surrogates_as_escapes():
    """The strategies really send lone surrogates as JSON escapes."""
    assert encode({"id": "\ud800"}) == json.dumps({"id": "\ud800"}).encode()
    assert b"\\ud800" in encode({"id": "\ud800"})
