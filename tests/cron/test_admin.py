"""The admin: windows and runs, read-only, linked both ways, filters and search."""

import pytest
from django.urls import reverse
from freezegun import freeze_time

from cron.models import DispatchWindow
from ledger.models import FunctionRun


@pytest.fixture
def dispatched(cron_client):
    with freeze_time("2026-02-17T19:31:10Z"):
        cron_client.get("/api/cron/background-jobs", HTTP_X_CORRELATION_ID="corr-1")
    return DispatchWindow.objects.get()


@pytest.mark.django_db
def test_admin__window_list_filters_search_and_links_to_runs(admin_client, dispatched):
    url = reverse("admin:cron_dispatchwindow_changelist")
    page = admin_client.get(url, {"q": "corr-1", "status": "enqueued", "cron": "background-jobs"})
    assert page.status_code == 200
    html = page.content.decode()
    assert dispatched.dispatch_key in html
    runs_url = (reverse("admin:ledger_functionrun_changelist")
                + "?task_id__in=" + ",".join(dispatched.task_ids))
    assert runs_url in html and "2 run(s)" in html
    FunctionRun.objects.create(function="other", source="command", task_id="other:1",
                               queued_at=dispatched.created_at)
    runs_page = admin_client.get(runs_url)  # the link: the window's runs, by task id
    assert runs_page.status_code == 200
    assert runs_page.context["cl"].result_count == 2
    assert {run.task_id for run in runs_page.context["cl"].result_list} == set(dispatched.task_ids)


@pytest.mark.django_db
def test_admin__runs_filtered_by_window_link_back(admin_client, dispatched):
    url = reverse("admin:ledger_functionrun_changelist")
    page = admin_client.get(url, {"dispatch_key": dispatched.dispatch_key})
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count("background-jobs:v1:60:2026-02-17T19:31:00Z") >= 2
    run = FunctionRun.objects.first()
    detail = admin_client.get(reverse("admin:ledger_functionrun_change", args=[run.pk]))
    assert detail.status_code == 200
    assert reverse("admin:cron_dispatchwindow_changelist") in detail.content.decode()


@pytest.mark.django_db
def test_admin__read_only(admin_client, dispatched):
    assert admin_client.get(reverse("admin:cron_dispatchwindow_add")).status_code == 403
    change = reverse("admin:cron_dispatchwindow_change", args=[dispatched.pk])
    response = admin_client.post(change, {"status": "enqueue-failed"})
    assert response.status_code == 403
    dispatched.refresh_from_db()
    assert dispatched.status == "enqueued"


@pytest.mark.django_db
def test_admin__redispatch_action_takes_the_dispatch_path(admin_client, dispatched):
    url = reverse("admin:cron_dispatchwindow_changelist")
    response = admin_client.post(url, {"action": "redispatch_now", "index": 0,
                                       "_selected_action": [dispatched.pk]}, follow=True)
    assert response.status_code == 200
    shown = [str(m) for m in response.context["messages"]]
    assert any(m.startswith("background-jobs: dispatched background-jobs:v1:60:")
               for m in shown), shown
    assert DispatchWindow.objects.filter(source="admin").count() == 1
    again = admin_client.post(url, {"action": "redispatch_now", "index": 0,
                                    "_selected_action": [dispatched.pk]}, follow=True)
    [message] = list(again.context["messages"])
    assert message.level_tag == "warning" and "duplicate suppressed" in str(message)


@pytest.mark.django_db
def test_admin__windows_cannot_be_deleted_and_times_show_seconds_in_utc(admin_client, dispatched):
    """No delete (the audit trail stays), no bulk delete action; times to the second, UTC."""
    delete = reverse("admin:cron_dispatchwindow_delete", args=[dispatched.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    page = admin_client.get(reverse("admin:cron_dispatchwindow_changelist"))
    assert "delete_selected" not in page.content.decode()
    assert "2026-02-17 19:31:00 UTC" in page.content.decode()
    assert DispatchWindow.objects.filter(pk=dispatched.pk).exists()


@pytest.mark.django_db
def test_admin__window_whose_runs_never_started_is_shown_past_deadline(admin_client, dispatched):
    """A window handed over whose runs stay queued past the re-send threshold is red."""
    FunctionRun.objects.update(queued_at=dispatched.created_at)  # 2026-02-17: long ago
    DispatchWindow.objects.update(enqueue_error="ConnectionError: redis down\nmore")
    page = admin_client.get(reverse("admin:cron_dispatchwindow_changelist")).content.decode()
    assert "2 queued (past deadline)" in page and "ops-alert" in page
    assert "ConnectionError: redis down" in page


@pytest.mark.django_db
def test_admin__rerun_window_retries_its_failed_runs_with_source_admin(admin_client, dispatched):
    """Re-run: the failed run gets a new run (source admin, same dispatch key), the succeeded
    one is left alone, and the action is recorded in the admin log."""
    from django.contrib.admin.models import LogEntry

    failed, ok = FunctionRun.objects.order_by("pk")
    FunctionRun.objects.filter(pk=failed.pk).update(status="failed", reason="error",
                                                    finished_at=dispatched.created_at,
                                                    error="boom")
    FunctionRun.objects.filter(pk=ok.pk).update(status="succeeded", finished_at=dispatched.created_at)
    url = reverse("admin:cron_dispatchwindow_changelist")
    response = admin_client.post(url, {"action": "rerun_windows", "index": 0,
                                       "_selected_action": [dispatched.pk]}, follow=True)
    [message] = list(response.context["messages"])
    assert "retried 1 run(s)" in str(message) and "1 succeeded" in str(message)
    retry = FunctionRun.objects.get(source="admin")
    assert (retry.function, retry.dispatch_key, retry.status) == (
        failed.function, dispatched.dispatch_key, "queued")
    assert retry.payload["retryOf"] == failed.pk and retry.payload["source"] == "admin"
    assert LogEntry.objects.filter(object_id=str(dispatched.pk)).exists()


@pytest.mark.django_db
def test_admin__window_actions_need_the_operate_permission(client, dispatched):
    """Staff without cron.operate_cron see the list but cannot run the actions."""
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_dispatchwindow"))
    client.force_login(user)
    url = reverse("admin:cron_dispatchwindow_changelist")
    page = client.get(url)
    assert page.status_code == 200 and "rerun_windows" not in page.content.decode()
    client.post(url, {"action": "rerun_windows", "index": 0, "_selected_action": [dispatched.pk]})
    client.post(url, {"action": "redispatch_now", "index": 0,
                      "_selected_action": [dispatched.pk]})
    assert not FunctionRun.objects.filter(source="admin").exists()
    assert not DispatchWindow.objects.filter(source="admin").exists()
