"""End to end with a real qcluster: an EMAIL_SENT posted over HTTP is processed within seconds,
with no cron tick (the doorbell enqueues the drain)."""

import json
import urllib.request

import pytest

from jobs.models import Client, Message
from tests.cluster import poll, qcluster
from tests.webhooks.helpers import TOKEN, URL, fixture_body
from webhooks.models import EventStatus, WebhookEvent


@pytest.mark.cluster
@pytest.mark.django_db(transaction=True)
def test_cluster__email_sent_over_http_is_processed_without_a_cron_tick(live_server):
    """POST EMAIL_SENT to the live server with a qcluster running: succeeded within seconds."""
    Client.objects.create(name="Acme", emailbison_workspace_id="42")
    with qcluster(workers=1) as cluster:
        request = urllib.request.Request(
            f"{live_server.url}{URL}", data=fixture_body("email_sent__basic"), method="POST",
            headers={"X-Webhook-Token": TOKEN, "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 202
            event_id = json.loads(response.read())["eventId"]
        poll(lambda: WebhookEvent.objects.filter(pk=event_id, status=EventStatus.SUCCEEDED).exists(),
             timeout=20, what="the EMAIL_SENT event processed", clusters=[cluster])
    assert Message.objects.filter(inboxxia_scheduled_email_id="9001").count() == 1
