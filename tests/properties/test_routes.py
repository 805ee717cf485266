"""The webhook and cron routes through the test client: any body, header or query answers 2xx or
4xx, never 5xx, and an accepted webhook is stored once."""

from urllib.parse import quote

import pytest
from django.test import Client
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import CRON_SECRET
from tests.properties.strategies import BOUNDED, bodies, nasty_text
from tests.webhooks.helpers import TOKEN, URL
from webhooks.models import WebhookEvent

header_values = st.one_of(nasty_text.map(lambda text: text.encode("utf-8", "surrogatepass")
                                         .decode("latin-1")),
                          st.sampled_from([TOKEN, f"Bearer {CRON_SECRET}", CRON_SECRET]))
queries = st.lists(st.tuples(st.sampled_from(["token", "dryRun", "clientId", "x", "q"]),
                             st.one_of(nasty_text, st.just(TOKEN))), max_size=3).map(
    lambda pairs: "&".join(f"{quote(name)}={quote(value, safe='', errors='surrogatepass')}"
                           for name, value in pairs))


@pytest.mark.django_db
@BOUNDED
@given(body=bodies, query=queries,
       token=st.one_of(st.just(TOKEN), st.just(TOKEN), st.none(), header_values),
       webhook_id=st.one_of(st.none(), header_values))
def test_webhook_route__never_5xx_and_accepted_events_stored_once(body, query, token,
                                                                  webhook_id):
    """2xx or 4xx only; a 2xx names one stored event, and delivering it again is a duplicate
    of that same event."""
    headers = {}
    if token is not None:
        headers["HTTP_X_WEBHOOK_TOKEN"] = token
    if webhook_id is not None:
        headers["HTTP_WEBHOOK_ID"] = webhook_id
    url = f"{URL}?{query}" if query else URL
    response = Client().post(url, data=body, content_type="application/json", **headers)
    assert response.status_code < 500, response.content
    if response.status_code >= 300:
        return
    first = response.json()
    assert WebhookEvent.objects.filter(dedupe_key=first["dedupeKey"]).count() == 1
    again = Client().post(url, data=body, content_type="application/json", **headers).json()
    assert again["duplicate"] is True and again["eventId"] == first["eventId"]
    assert WebhookEvent.objects.filter(dedupe_key=first["dedupeKey"]).count() == 1


@pytest.fixture
def params_cron(make_cron):
    """A cron that accepts params, beside the catalog's background-jobs."""
    return make_cron("params", allowed_params={"dryRun", "clientId"})


@pytest.mark.django_db
@BOUNDED
@given(route=st.one_of(st.sampled_from(["background-jobs", "params", "nope", ""]), nasty_text),
       query=queries, authorization=st.one_of(st.none(), header_values),
       secret=st.one_of(st.none(), header_values), method=st.sampled_from(["GET", "POST", "PUT"]),
       correlation=st.one_of(st.none(), header_values))
def test_cron_routes__never_5xx(params_cron, route, query, authorization, secret, method,
                                correlation):
    """Any route, query, credential or correlation id: 2xx or 4xx."""
    headers = {}
    if authorization is not None:
        headers["HTTP_AUTHORIZATION"] = authorization
    if secret is not None:
        headers["HTTP_X_CRON_SECRET"] = secret
    if correlation is not None:
        headers["HTTP_X_CORRELATION_ID"] = correlation
    path = "/api/cron/" + quote(route, safe="/", errors="surrogatepass")
    url = f"{path}?{query}" if query else path
    response = Client().generic(method, url, **headers)
    assert response.status_code < 500, (url, response.content)
