"""Shared hypothesis settings and strategies for the property suite.

Bounded for CI: a fixed number of examples, no deadline (a shared machine), derandomized (the
same examples every run, so a failure reproduces), no example database on disk.
"""

import json

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from webhooks.registry import EVENT_TYPES

BOUNDED = settings(max_examples=80, deadline=None, derandomize=True, database=None,
                   suppress_health_check=[HealthCheck.function_scoped_fixture,
                                          HealthCheck.too_slow, HealthCheck.data_too_large])
# Text as a provider may send it: any code point, lone surrogates and NUL included.
any_text = st.text(st.characters(codec=None, min_codepoint=0), max_size=40)
nasty_text = st.one_of(any_text, st.sampled_from([
    "", " ", "\x00", "\ud800", "\udfff", "\ufffd", "inboxxia:EMAIL_SENT:42", "webhook-id:x",
    "sha256:" + "0" * 64, "sha256-of:" + "0" * 64, "x" * 300, "2026-02-30T00:00:00Z",
    "0001-01-01T00:00:00+10:00", "9999-12-31T23:59:59-23:59", "\u202e\u0627"]))
ids = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                nasty_text, st.lists(st.integers(), max_size=2))
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), nasty_text),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(nasty_text, inner, max_size=4)),
    max_leaves=12)
times = st.one_of(st.none(), nasty_text, st.integers(),
                  st.datetimes().map(lambda moment: moment.isoformat()),
                  st.datetimes(timezones=st.timezones()).map(lambda moment: moment.isoformat()))


@st.composite
def events(draw) -> dict:
    """Bodies shaped like provider events, with every field possibly wrong."""
    event_type = draw(st.one_of(st.sampled_from(EVENT_TYPES), nasty_text, st.integers()))
    return {
        "event": draw(st.one_of(json_values, st.fixed_dictionaries({
            "type": st.just(event_type), "workspace_id": ids}))),
        "data": draw(st.one_of(json_values, st.fixed_dictionaries({
            "scheduled_email": st.fixed_dictionaries({"id": ids, "sent_at": times}),
            "reply": st.fixed_dictionaries({"id": ids, "date_received": times,
                                             "created_at": times, "text_body": nasty_text}),
            "lead": st.fixed_dictionaries({"email": nasty_text, "id": ids}),
            "campaign": st.fixed_dictionaries({"id": ids, "name": nasty_text}),
        }))),
    }


def encode(payload) -> bytes:
    """JSON with lone surrogates kept as their escapes (as a provider's JSON may carry them)."""
    return json.dumps(payload, allow_nan=True).encode("ascii")


bodies = st.one_of(st.binary(max_size=200), events().map(encode), json_values.map(encode))


@st.composite
def provider_events(draw) -> bytes:
    """Real fixture events with their ids, times and texts drawn: mostly accepted."""
    from tests.webhooks.helpers import fixture_payload

    payload = fixture_payload(draw(st.sampled_from(
        ["email_sent__basic", "lead_replied__basic", "lead_interested__basic",
         "email_opened__basic", "email_bounced__basic"])))
    data = payload["data"]
    data["scheduled_email"]["id"] = draw(st.one_of(st.integers(min_value=1), nasty_text))
    data["scheduled_email"]["sent_at"] = draw(times)
    if "reply" in data:
        data["reply"]["id"] = draw(st.one_of(st.integers(min_value=1), nasty_text))
        data["reply"]["date_received"] = draw(times)
    data["lead"]["email"] = draw(st.one_of(st.emails(), nasty_text))
    return encode(payload)


bodies = st.one_of(provider_events(), provider_events(), bodies)
