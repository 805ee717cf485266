"""The admin shows a run with its attempts."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from ledger.claims import Outcome, function_run_claim, function_run_finish, function_run_take_back
from ledger.models import AttemptOutcome, FunctionRun, RunStatus
from ledger.registry import get_function
from tests.ledger.helpers import fresh, run_create

pytestmark = pytest.mark.django_db


def run_with_two_attempts():
    """Attempt 1 abandoned by a dead worker, attempt 2 succeeded."""
    spec = get_function("t-hang-once")
    run = run_create("t-hang-once", correlation_id="corr-admin-1")
    function_run_claim(run_id=run.pk, spec=spec, now=timezone.now())
    later = timezone.now() + timedelta(hours=1)
    function_run_take_back(run=fresh(run), now=later)
    claim = function_run_claim(run_id=run.pk, spec=spec, now=later)
    function_run_finish(run=claim.run, claim=claim, now=later + timedelta(seconds=2),
                        outcome=Outcome(AttemptOutcome.SUCCEEDED, result={"done": True}))
    assert fresh(run).status == RunStatus.SUCCEEDED
    return run


def test_admin_run_page__shows_the_run_with_each_attempt(admin_client):
    """The run's page renders its status and a row per attempt with outcome, worker and error."""
    run = run_with_two_attempts()
    response = admin_client.get(reverse("admin:ledger_functionrun_change", args=[run.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "corr-admin-1" in page and "succeeded" in page
    assert "abandoned" in page and "its worker stopped renewing the lease" in page
    inline = response.context["inline_admin_formsets"][0]
    assert [form.original.outcome for form in inline] == [AttemptOutcome.ABANDONED,
                                                           AttemptOutcome.SUCCEEDED]


def test_admin_run_list__filters_by_status_and_reason(admin_client):
    """The run list renders, filtered the way an operator looks for trouble."""
    run_with_two_attempts()
    url = reverse("admin:ledger_functionrun_changelist")
    assert admin_client.get(url).status_code == 200
    response = admin_client.get(url, {"status": "succeeded"})
    assert response.status_code == 200 and "t-hang-once" in response.content.decode()
    assert admin_client.get(url, {"status": "failed", "reason": "abandoned"}).status_code == 200


def _failed_run():
    run = run_create("t-ok", correlation_id="corr-failed", dispatch_key="k:1")
    FunctionRun.objects.filter(pk=run.pk).update(status=RunStatus.FAILED, reason="error",
                                                 finished_at=timezone.now(), duration_ms=65000,
                                                 error="RuntimeError: planned\nTraceback ...")
    return fresh(run)


def test_admin_run_list__error_age_duration_attempts_columns(admin_client):
    """The list shows the error's first line, the age, the duration and attempts n/max."""
    _failed_run()
    page = admin_client.get(reverse("admin:ledger_functionrun_changelist")).content.decode()
    assert "RuntimeError: planned" in page and "Traceback" not in page
    assert "1m 05s" in page and "0/1" in page


def test_admin_retry_action__new_run_with_source_admin(admin_client):
    """Retry makes a new queued run of the failed one (source admin); the failed run stays."""
    failed = _failed_run()
    url = reverse("admin:ledger_functionrun_changelist")
    response = admin_client.post(url, {"action": "retry_failed", "index": 0,
                                       "_selected_action": [failed.pk]}, follow=True)
    assert "Retried 1 run(s)" in str(list(response.context["messages"])[0])
    retry = FunctionRun.objects.get(source="admin")
    assert (retry.function, retry.status, retry.dispatch_key, retry.correlation_id) == (
        "t-ok", RunStatus.QUEUED, "k:1", "corr-failed")
    assert retry.enqueued_at is not None  # handed to the broker
    assert fresh(failed).status == RunStatus.FAILED


def test_admin_cancel_action__cancels_only_queued_runs(admin_client):
    """Cancel: queued ends cancelled-by-operator; a failed one is left alone and said so."""
    queued, failed = run_create("t-ok"), _failed_run()
    url = reverse("admin:ledger_functionrun_changelist")
    response = admin_client.post(url, {"action": "cancel_queued", "index": 0,
                                       "_selected_action": [queued.pk, failed.pk]}, follow=True)
    assert "Cancelled 1 queued run(s); 1 not queued" in str(list(response.context["messages"])[0])
    assert (fresh(queued).status, fresh(queued).reason) == (RunStatus.CANCELLED,
                                                            "cancelled-by-operator")
    assert fresh(failed).status == RunStatus.FAILED


def test_admin_run_actions__need_the_change_permission(client):
    """A staff user who may only view runs cannot retry or cancel."""
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_functionrun"))
    client.force_login(user)
    failed, queued = _failed_run(), run_create("t-ok")
    url = reverse("admin:ledger_functionrun_changelist")
    client.post(url, {"action": "retry_failed", "index": 0, "_selected_action": [failed.pk]})
    client.post(url, {"action": "cancel_queued", "index": 0, "_selected_action": [queued.pk]})
    assert not FunctionRun.objects.filter(source="admin").exists()
    assert fresh(queued).status == RunStatus.QUEUED


def test_admin_runs__cannot_be_deleted_and_django_q_tables_are_not_registered(admin_client):
    """No delete for runs; Django-Q's tables and the slot table are out of the admin."""
    from django.contrib import admin
    from django_q.models import Failure, OrmQ, Schedule, Success

    from ledger.models import ConcurrencySlot

    run = _failed_run()
    assert admin_client.post(reverse("admin:ledger_functionrun_delete", args=[run.pk]),
                             {"post": "yes"}).status_code == 403
    for model in (Schedule, Success, Failure, OrmQ, ConcurrencySlot):
        assert not admin.site.is_registered(model)
