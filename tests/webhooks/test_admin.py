"""The events admin: filters, search, the raw body shown safely, links, recorded requeue."""

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.webhooks.helpers import fixture_body, post
from webhooks.models import EventStatus, WebhookEvent
from webhooks.processing import webhook_events_drain

CHANGELIST = "admin:webhooks_webhookevent_changelist"


@pytest.fixture
def admin(django_user_model):
    user = django_user_model.objects.create_superuser("ops", "ops@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_admin__changelist_filters_and_searches_by_lead_email(admin, workspace):
    """Filters by type, status and day render; search finds an event by its lead's email."""
    post(Client(), fixture_body("email_sent__basic"))
    post(Client(), fixture_body("email_opened__basic").replace(b"ada@example.com",
                                                               b"bob@example.com"))
    url = reverse(CHANGELIST)
    for query in ("event_type__exact=EMAIL_SENT", "status__exact=pending",
                  "received_at__year=2026", ""):
        assert admin.get(f"{url}?{query}").status_code == 200
    found = admin.get(url, {"q": "bob@example.com"})
    assert found.context["cl"].result_count == 1
    assert admin.get(url, {"q": "inboxxia:EMAIL_SENT:9001"}).context["cl"].result_count == 1


@pytest.mark.django_db
def test_admin__raw_body_is_escaped_and_decoded_with_replacement(admin):
    """Script tags are escaped, invalid UTF-8 shows as U+FFFD; nothing breaks the page."""
    body = (b'{"event": {"type": "EMAIL_OPENED"}, "x": "<script>alert(1)</script>",'
            b' "y": "\xff\\u0000"}')
    event_id = post(Client(), body).json()["eventId"]
    page = admin.get(reverse("admin:webhooks_webhookevent_change", args=[event_id]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "\ufffd" in html


@pytest.mark.django_db
def test_admin__links_to_the_lead_and_message_an_event_produced(admin, workspace):
    """A processed EMAIL_SENT links to its lead and message admin pages."""
    event_id = post(Client(), fixture_body("email_sent__basic")).json()["eventId"]
    webhook_events_drain(budget_seconds=5)
    event = WebhookEvent.objects.get(pk=event_id)
    lead_pk = event.result["produced"]["lead"].split(":")[1]
    html = admin.get(reverse("admin:webhooks_webhookevent_change", args=[event_id])).content
    assert reverse("admin:jobs_lead_change", args=[lead_pk]).encode() in html
    assert b"/admin/jobs/message/" in html


@pytest.mark.django_db
def test_admin__requeue_action_resets_attempts_and_is_recorded(admin):
    """The requeue action sends failed events back with attempts 0 and logs who did it."""
    failed = post(Client(), fixture_body("email_sent__basic")).json()["eventId"]
    WebhookEvent.objects.filter(pk=failed).update(status=EventStatus.FAILED, attempts=8)
    response = admin.post(reverse(CHANGELIST), {
        "action": "requeue_failed", "_selected_action": [str(failed)]}, follow=True)
    assert response.status_code == 200
    event = WebhookEvent.objects.get(pk=failed)
    assert (event.status, event.attempts, event.requeued_by) == (EventStatus.PENDING, 0, "ops")
    entry = LogEntry.objects.get(object_id=str(failed))
    assert "Requeued" in entry.get_change_message()


@pytest.mark.django_db
def test_admin__events_cannot_be_added_or_edited(admin):
    """Events are evidence: no add page, the change page is read-only."""
    assert admin.get(reverse("admin:webhooks_webhookevent_add")).status_code == 403


@pytest.mark.django_db
def test_admin__events_cannot_be_deleted_and_show_error_and_attempts(admin):
    """Failed events stay (no delete); the list shows attempts n/max and the last error; the
    doorbell helper table is not in the admin."""
    from django.contrib import admin as django_admin

    from webhooks.models import DrainDoorbell

    event = WebhookEvent.objects.create(
        event_type="EMAIL_OPENED", dedupe_key="k-del", raw_body=b"{}", status="failed",
        attempts=8, last_error="KeyError: 'lead'\nmore", received_at=timezone.now())
    assert admin.post(reverse("admin:webhooks_webhookevent_delete", args=[event.pk]),
                      {"post": "yes"}).status_code == 403
    page = admin.get(reverse("admin:webhooks_webhookevent_changelist")).content.decode()
    assert "8/8" in page and "KeyError: &#x27;lead&#x27;" in page
    assert not django_admin.site.is_registered(DrainDoorbell)


@pytest.mark.django_db
def test_admin__requeue_needs_the_change_permission(client, django_user_model):
    """A staff user who may only view events cannot requeue a failed one."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_webhookevent"))
    client.force_login(user)
    event = WebhookEvent.objects.create(
        event_type="EMAIL_OPENED", dedupe_key="k-perm", raw_body=b"{}", status="failed",
        attempts=8, received_at=timezone.now())
    client.post(reverse(CHANGELIST), {"action": "requeue_failed", "index": 0,
                                      "_selected_action": [event.pk]})
    event.refresh_from_db()
    assert event.status == "failed" and event.requeue_count == 0
