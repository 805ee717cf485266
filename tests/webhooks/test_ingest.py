"""Ingestion over HTTP: response shapes, hostile bodies, dedupe, modes (CONTRACT.md "Webhook")."""

import json

import pytest
from django.test import Client, override_settings
from django_q.models import OrmQ

from tests.conftest import on_postgres, on_redis
from tests.db_faults import table_missing
from tests.webhooks.helpers import body_of, fixture_body, fixture_payload, post
from webhooks.models import DrainDoorbell, EventStatus, WebhookEvent

MIB = 1024 * 1024


def stored(event_id: int) -> WebhookEvent:
    return WebhookEvent.objects.get(pk=event_id)


@pytest.mark.django_db
def test_ingest__email_sent_is_queued_with_the_contract_shape():
    """202 with exactly the contract's keys; stored pending with its dedupe key."""
    response = post(Client(), fixture_body("email_sent__basic"))
    assert response.status_code == 202
    body = response.json()
    assert body == {"success": True, "mode": "queued", "queued": True,
                    "eventId": body["eventId"], "eventType": "EMAIL_SENT",
                    "dedupeKey": "inboxxia:EMAIL_SENT:9001", "duplicate": False}
    event = stored(body["eventId"])
    assert event.status == EventStatus.PENDING
    assert event.attempts == 0 and event.max_attempts == 8
    assert event.next_attempt_at == event.received_at
    assert event.lead_email == "ada@example.com"


@pytest.mark.django_db
@pytest.mark.parametrize(("fixture", "key"), [
    ("lead_replied__basic", "inboxxia:LEAD_REPLIED:7001"),
    ("lead_interested__basic", "inboxxia:LEAD_INTERESTED:7001"),
    ("untracked_reply_received__basic", "inboxxia:UNTRACKED_REPLY_RECEIVED:7010"),
])
def test_ingest__reply_dedupe_key_is_type_and_reply_id(fixture, key):
    """Replies are keyed by type and reply id."""
    response = post(Client(), fixture_body(fixture))
    assert response.status_code == 202
    assert response.json()["dedupeKey"] == key


@pytest.mark.django_db
def test_ingest__other_types_fall_back_to_the_body_hash():
    """No webhook-id header: the SHA-256 of the raw body is the key, in its own namespace."""
    import hashlib

    body = fixture_body("email_opened__basic")
    response = post(Client(), body)
    assert response.json()["dedupeKey"] == "sha256:" + hashlib.sha256(body).hexdigest()


@pytest.mark.django_db
def test_ingest__duplicate_returns_first_id_and_changes_nothing(workspace):
    """A re-delivery of a processed event is answered duplicate and leaves it succeeded."""
    from webhooks.processing import webhook_events_drain

    first = post(Client(), fixture_body("email_sent__basic")).json()
    webhook_events_drain(budget_seconds=5)
    before = stored(first["eventId"])
    again = post(Client(), fixture_body("email_sent__basic"))
    assert again.status_code == 202
    assert again.json()["duplicate"] is True
    assert again.json()["eventId"] == first["eventId"]
    after = stored(first["eventId"])
    assert after.status == EventStatus.SUCCEEDED
    assert (after.attempts, after.processed_at, after.received_at) == (
        before.attempts, before.processed_at, before.received_at)
    assert WebhookEvent.objects.count() == 1


@pytest.mark.django_db
def test_ingest__unknown_type_is_stored_ignored_and_answered_200():
    """A type nobody handles: 200 ignored, kept as ignored (nothing a provider sends is lost)."""
    response = post(Client(), fixture_body("manual_email_sent__unknown_type"))
    assert response.status_code == 200
    assert response.json()["ignored"] is True
    event = stored(response.json()["eventId"])
    assert event.status == EventStatus.IGNORED
    assert event.processed_at is not None


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "why"), [
    (b"", "empty"),
    (b"   \n", "blank"),
    (b"not json", "not JSON"),
    (b"[1, 2, 3]", "JSON array"),
    (b'"just a string"', "JSON string"),
    (b"\xff\xfe\x00garbage", "non-UTF-8 garbage"),
    (b"[" * 100000 + b"]" * 100000, "absurd nesting"),
    (b'{"n": ' + b"9" * 5000 + b"}", "huge integer"),
    (b'{"event": {}}', "no event.type"),
    (b'{"event": {"type": 42}}', "event.type not a string"),
    (b'{"event": "EMAIL_SENT"}', "event not an object"),
    (b'{"event": {"type": "   "}}', "blank event.type"),
])
def test_ingest__bad_bodies_are_400_never_500(body, why):
    """Bodies that are not an event are refused with 400 and nothing is stored."""
    response = post(Client(), body)
    assert response.status_code == 400, (why, response.content)
    assert response.json()["success"] is False
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("fixture", ["email_sent__missing_scheduled_email_id"])
def test_ingest__required_id_missing_is_400(fixture):
    """EMAIL_SENT without data.scheduled_email.id cannot be deduplicated: 400."""
    assert post(Client(), fixture_body(fixture)).status_code == 400


@pytest.mark.django_db
@pytest.mark.parametrize("reply_id", [None, "", "   ", True, {"id": 1}, [1]])
def test_ingest__reply_without_a_usable_id_is_400(reply_id):
    """A reply id that is missing, blank or not an id is refused."""
    payload = fixture_payload("lead_replied__basic")
    payload["data"]["reply"]["id"] = reply_id
    assert post(Client(), body_of(payload)).status_code == 400


def hostile_bodies() -> dict[str, bytes]:
    email_sent = fixture_body("email_sent__basic")
    return {
        "nul escape": email_sent.replace(b'"Hi Ada,', b'"Hi\\u0000 Ada,').replace(
            b'"Ada"', b'"A\\u0000da"'),
        "raw nul inside json string is invalid": None,
        "lone surrogate": email_sent.replace(b'"Lovelace"', b'"Love\\ud800lace"'),
        "emoji and rtl": fixture_body("lead_replied__emoji_rtl"),
        "sql looking": fixture_body("lead_replied__sql_looking"),
        "latin-1 byte in a string": email_sent.replace(b'"Lovelace"', b'"Lovel\xe2ce"'),
        "nul in type": b'{"event": {"type": "EMAIL\\u0000OPENED\\udfff"}}',
        "nul in webhook lead email": fixture_body("email_opened__basic").replace(
            b'"ada@example.com"', b'"ada\\u0000@example.com\\ud800"'),
    }


@pytest.mark.django_db
@pytest.mark.parametrize("name", [n for n, b in hostile_bodies().items() if b is not None])
def test_ingest__hostile_bodies_are_accepted_and_stored_byte_for_byte(name):
    """NUL, lone surrogates, emoji/RTL, SQL-looking text, stray bytes: stored exactly as sent
    (also on PostgreSQL, whose text and jsonb refuse NUL and lone surrogates)."""
    body = hostile_bodies()[name]
    response = post(Client(), body)
    assert response.status_code in (200, 202), response.content
    event = stored(response.json()["eventId"])
    assert bytes(event.raw_body) == body
    assert "\x00" not in event.event_type + event.lead_email


@pytest.mark.django_db
def test_ingest__nul_and_surrogates_in_type_are_cleaned():
    """The stored type has NUL removed and a lone surrogate replaced."""
    response = post(Client(), b'{"event": {"type": "email\\u0000_opened\\udfff"}}')
    assert response.json()["eventType"] == "EMAIL_OPENED\ufffd"


@pytest.mark.django_db
@override_settings(WEBHOOK_MAX_BODY_BYTES=MIB)
def test_ingest__one_mib_is_accepted_and_one_more_byte_is_413():
    """Exactly the limit is stored; one byte more is 413 and nothing is stored."""
    payload = fixture_payload("email_opened__basic")
    payload["padding"] = ""
    filler = MIB - len(body_of(payload))
    payload["padding"] = "x" * filler
    at_limit = body_of(payload)
    assert len(at_limit) == MIB
    assert post(Client(), at_limit).status_code == 202
    over = body_of({**payload, "padding": "x" * (filler + 1)})
    response = post(Client(), over)
    assert response.status_code == 413
    assert response.json()["success"] is False
    assert WebhookEvent.objects.count() == 1


@pytest.mark.django_db
@override_settings(WEBHOOK_MAX_BODY_BYTES=2048)
def test_ingest__body_is_not_read_past_the_limit():
    """A declared Content-Length over the limit is refused without reading the body."""
    from django.test import RequestFactory

    from webhooks.exceptions import WebhookBodyTooLarge
    from webhooks.views import read_limited_body

    class Exploding:
        def read(self, *args):
            raise AssertionError("the body must not be read")

    request = RequestFactory().post("/x", data=b"x" * 10, content_type="application/json")
    request.META["CONTENT_LENGTH"] = str(10 * MIB)
    request._stream = Exploding()
    with pytest.raises(WebhookBodyTooLarge):
        read_limited_body(request, 2048)

    class Lying:
        def __init__(self):
            self.asked = []

        def read(self, size=-1):
            self.asked.append(size)
            return b"y" * 4096

    request = RequestFactory().post("/x", data=b"x", content_type="application/json")
    request._stream = lying = Lying()
    with pytest.raises(WebhookBodyTooLarge):
        read_limited_body(request, 2048)
    assert lying.asked == [2049]


@pytest.mark.django_db
@override_settings(INBOXXIA_EMAIL_SENT_ASYNC=False)
def test_ingest__email_sent_inline_when_async_is_off(workspace):
    """Flag off: stored, processed in the request, 200 mode inline."""
    response = post(Client(), fixture_body("email_sent__basic"))
    assert response.status_code == 200
    body = response.json()
    assert body["mode"] == "inline" and body["queued"] is False
    assert body["status"] == EventStatus.SUCCEEDED
    assert stored(body["eventId"]).status == EventStatus.SUCCEEDED


@pytest.mark.django_db
@override_settings(WEBHOOK_INLINE_EVENT_TYPES=["LEAD_UNSUBSCRIBED"])
def test_ingest__listed_types_run_inline_others_queue(workspace):
    """WEBHOOK_INLINE_EVENT_TYPES makes a type inline; other types stay queued."""
    inline = post(Client(), fixture_body("lead_unsubscribed__basic"))
    queued = post(Client(), fixture_body("lead_replied__basic"))
    assert (inline.status_code, inline.json()["mode"]) == (200, "inline")
    assert (queued.status_code, queued.json()["mode"]) == (202, "queued")


@pytest.mark.django_db
@override_settings(INBOXXIA_EMAIL_SENT_ASYNC=False)
def test_ingest__inline_transient_failure_stays_pending_for_retry():
    """Inline with an unknown workspace: 200, the event waits for its retry (not lost)."""
    response = post(Client(), fixture_body("email_sent__unknown_workspace"))
    assert response.status_code == 200
    event = stored(response.json()["eventId"])
    assert event.status == EventStatus.PENDING and event.attempts == 1
    assert "UnknownWorkspace" in event.last_error


@pytest.mark.django_db(transaction=True)  # the failed INSERT must not abort a test transaction
def test_ingest__database_down_is_503_with_retry_after():
    """The store fails (the database refuses the INSERT): 503 with Retry-After."""
    with table_missing(WebhookEvent):
        response = post(Client(), fixture_body("email_sent__basic"))
    assert response.status_code == 503
    assert int(response["Retry-After"]) > 0
    assert response.json()["retryable"] is True


@pytest.mark.skipif(not on_postgres(), reason="SQLite opens a file; an unreachable database "
                    "server needs PostgreSQL")
@pytest.mark.django_db(transaction=True)
def test_ingest__database_really_unreachable_is_503():
    """With the real connection pointed at a closed port, the route still answers 503."""
    from django.db import connection

    connection.close()
    original = dict(connection.settings_dict)
    connection.settings_dict["PORT"] = "1"
    try:
        response = post(Client(), fixture_body("email_sent__basic"))
    finally:
        connection.close()
        connection.settings_dict.update(original)
    assert response.status_code == 503
    assert response["Retry-After"]


@pytest.mark.django_db
def test_ingest__doorbell_enqueues_one_drain_however_many_events(django_capture_on_commit_callbacks):
    """Ten events in a row enqueue one drain task while it waits."""
    if on_redis():
        pytest.skip("counts ORM broker rows; the Redis broker keeps tasks elsewhere")
    for number in range(10):
        payload = fixture_payload("email_sent__basic")
        payload["data"]["scheduled_email"]["id"] = 100 + number
        with django_capture_on_commit_callbacks(execute=True):
            assert post(Client(), body_of(payload)).status_code == 202
    assert OrmQ.objects.count() == 1
    assert DrainDoorbell.objects.get().pending is True


@pytest.mark.django_db
def test_ingest__doorbell_rings_after_commit_only(django_capture_on_commit_callbacks):
    """Nothing is enqueued before the event's transaction commits."""
    if on_redis():
        pytest.skip("counts ORM broker rows")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        post(Client(), fixture_body("email_sent__basic"))
    assert OrmQ.objects.count() == 0
    assert len(callbacks) == 1
    callbacks[0]()
    assert OrmQ.objects.count() == 1


@pytest.mark.django_db
def test_ingest__json_with_bom_is_accepted():
    """A UTF-8 byte-order mark before the JSON is tolerated and kept in the raw body."""
    body = b"\xef\xbb\xbf" + fixture_body("email_opened__basic")
    response = post(Client(), body)
    assert response.status_code == 202
    assert bytes(stored(response.json()["eventId"]).raw_body) == body


def test_ingest__response_keys_are_json_serialisable():
    """Guard: the fixtures are valid JSON objects with an event type."""
    for path in sorted((fixture_body.__globals__["FIXTURES"]).glob("*.json")):
        assert json.loads(path.read_bytes())["event"]["type"]
