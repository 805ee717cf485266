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
    assert any(m.startswith("background-jobs: dispatch-only") for m in shown), shown
    assert DispatchWindow.objects.filter(source="admin").count() == 1
