"""The admin shows a run with its attempts."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from ledger.claims import Outcome, function_run_claim, function_run_finish, function_run_take_back
from ledger.models import AttemptOutcome, RunStatus
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
