"""The status page: linked from the admin index, renders with and without data, says what
failed and what is stuck, and its two actions are recorded and permission-checked."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.urls import reverse
from django.utils import timezone

from cron.models import CronOverride, CronOverrideAudit, DispatchWindow
from ledger.models import FunctionRun, RunStatus

pytestmark = pytest.mark.django_db
STATUS = "/admin/status/"


def test_index__links_the_status_page(admin_client):
    """The admin index carries the link; Django-Q's and helper tables are not listed."""
    page = admin_client.get(reverse("admin:index")).content.decode()
    assert f'href="{STATUS}"' in page
    for hidden in ("django_q", "concurrencyslot", "draindoorbell"):
        assert hidden not in page.lower()


def test_status_page__renders_with_no_data(admin_client):
    """A fresh install: every cron listed, nothing yet, the cluster never seen, the sweeper
    scheduled by migrate."""
    page = admin_client.get(STATUS)
    html = page.content.decode()
    assert page.status_code == 200
    assert 'id="cron-background-jobs"' in html and "none yet" in html
    assert "never: no cluster running?" in html
    assert "next run 20" in html and "UTC" in html


def test_status_page__shows_failures_stuck_runs_mode_and_backlog(admin_client, cron_client):
    """A failed run with its error, a run past its deadline, an override with its author and
    reason, and a due webhook are all on the page."""
    cron_client.get("/api/cron/background-jobs")
    first, second = FunctionRun.objects.order_by("pk")
    now = timezone.now()
    FunctionRun.objects.filter(pk=first.pk).update(
        status=RunStatus.FAILED, reason="error", finished_at=now, duration_ms=1234,
        error="ValueError: the provider said no\nTraceback ...")
    FunctionRun.objects.filter(pk=second.pk).update(queued_at=now - timedelta(hours=2))
    admin_client.post(reverse("ops_status_act"), {"cron": "background-jobs",
                                                   "action": "override", "mode": "pause",
                                                   "reason": "incident 7"})
    html = admin_client.get(STATUS).content.decode()
    assert "ValueError: the provider said no" in html and "1.2 s" in html
    assert "0.0% of 1 run(s) succeeded" in html and "1 failed" in html
    assert "1 past deadline" in html and "1 stuck" in html
    assert "paused" in html and "from override" in html and "incident 7" in html


def test_dispatch_now__no_window_needed_and_duplicate_is_a_warning(admin_client):
    """The first dispatch creates the window (source admin); the second reports the suppressed
    duplicate as a warning, not a success."""
    act = reverse("ops_status_act")
    first = admin_client.post(act, {"cron": "background-jobs", "action": "dispatch"}, follow=True)
    [message] = list(first.context["messages"])
    assert message.level_tag == "success" and "dispatched background-jobs:v1:60:" in str(message)
    window = DispatchWindow.objects.get()
    assert window.source == "admin" and window.correlation_id.startswith("admin:admin:")
    assert FunctionRun.objects.filter(source="admin").count() == 2
    again = admin_client.post(act, {"cron": "background-jobs", "action": "dispatch"}, follow=True)
    [message] = list(again.context["messages"])
    assert message.level_tag == "warning" and "duplicate suppressed" in str(message)


def test_override__set_from_the_page_is_audited_and_needs_a_reason(admin_client):
    """An override with a reason is set and audited with source admin; without one, nothing."""
    act = reverse("ops_status_act")
    refused = admin_client.post(act, {"cron": "background-jobs", "action": "override",
                                      "mode": "pause", "reason": " "}, follow=True)
    assert "reason" in str(list(refused.context["messages"])[0])
    assert not CronOverride.objects.exists()
    admin_client.post(act, {"cron": "background-jobs", "action": "override",
                            "mode": "force-inline", "reason": "cluster down"})
    audit = CronOverrideAudit.objects.get()
    assert (audit.new_mode, audit.actor, audit.source, audit.reason) == (
        "force-inline", "admin", "admin", "cluster down")


def test_actions__need_the_operate_permission(client):
    """Staff without cron.operate_cron read the page without forms; their POST is refused."""
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    client.force_login(user)
    page = client.get(STATUS)
    assert page.status_code == 200 and "Dispatch now" not in page.content.decode()
    response = client.post(reverse("ops_status_act"), {"cron": "background-jobs",
                                                        "action": "dispatch"})
    assert response.status_code == 403
    assert not DispatchWindow.objects.exists()


def test_status_page__needs_a_staff_login(client):
    """Anonymous: sent to the admin's login."""
    response = client.get(STATUS)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
