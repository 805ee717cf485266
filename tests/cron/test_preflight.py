"""``preflight [--json]`` and ``cron_status [--json]`` on a healthy and a broken set-up."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone
from django_q.models import Schedule

from cron.overrides import cron_override_set
from ledger.claims import function_run_claim
from ledger.registry import get_function
from ledger.schedules import SWEEP_SCHEDULE_NAME
from tests.ledger.helpers import run_create

pytestmark = pytest.mark.django_db


def _run(command: str, *args) -> tuple[str, str | None]:
    """The command's stdout, and its error when it failed (exit 1)."""
    out = StringIO()
    try:
        call_command(command, *args, stdout=out)
    except CommandError as error:
        return out.getvalue(), str(error)
    return out.getvalue(), None


def _cluster_seen(make_function) -> None:
    """What a worker leaves when it starts an attempt: the ledger's sign of a live cluster."""
    run = run_create(make_function("t-preflight"))
    function_run_claim(run_id=run.pk, spec=get_function("t-preflight"), now=timezone.now())


def test_preflight__healthy_setup_passes_and_reports_flags_and_modes(make_function):
    """Everything in place: exit 0; the JSON lists each check, every flag with its source,
    each cron's mode with its source."""
    _cluster_seen(make_function)
    out, error = _run("preflight", "--json")
    report = json.loads(out)
    assert error is None and report["ok"] is True and report["problems"] == []
    assert {check["name"] for check in report["checks"]} >= {
        "emergency-fallback", "migrations", "broker", "cluster", "webhook-auth", "sweeper"}
    flags = {flag["flag"]: flag for flag in report["flags"]}
    assert flags["BACKGROUND_JOBS_INLINE_EMERGENCY_FALLBACK"] == {
        "flag": "BACKGROUND_JOBS_INLINE_EMERGENCY_FALLBACK", "value": False, "source": "default"}
    assert flags["BACKGROUND_JOBS_DISPATCH_WINDOW_SECONDS"]["value"] == 60
    assert report["crons"][0]["source"] == "env"
    table, error = _run("preflight")
    assert error is None and "FAIL" not in table and "BACKGROUND_JOBS_USE_QUEUE" in table


@override_settings(BACKGROUND_JOBS_INLINE_EMERGENCY_FALLBACK=True, WEBHOOK_TOKEN=[],
                   WEBHOOK_SIGNING_SECRET=[])
def test_preflight__broken_setup_exits_1_naming_each_problem():
    """Fallback on, no webhook auth, no sweeper schedule, no cluster: exit 1 naming them all."""
    Schedule.objects.filter(name=SWEEP_SCHEDULE_NAME).delete()
    out, error = _run("preflight", "--json")
    report = json.loads(out)
    assert report["ok"] is False
    assert set(report["problems"]) == {"emergency-fallback", "webhook-auth", "sweeper", "cluster"}
    assert error == "preflight failed: emergency-fallback, cluster, webhook-auth, sweeper"
    table, _ = _run("preflight")
    assert "FAIL emergency-fallback  BACKGROUND_JOBS_INLINE_EMERGENCY_FALLBACK is on" in table
    status = json.loads(_run("cron_status", "--json")[0])["pipeline"]
    assert status["sweeper"]["scheduled"] is False and status["cluster"]["at"] is None
    assert "sweeper: NOT SCHEDULED (migrate)" in _run("cron_status")[0]


def test_cron_status__table_and_json_with_and_without_data(cron_client):
    """Empty: every cron, nothing yet, cluster never seen. With a window and an override: the
    window's status and the override as the mode's source."""
    out, _ = _run("cron_status")
    assert "background-jobs" in out and "cluster last seen: never" in out
    report = json.loads(_run("cron_status", "--json")[0])
    crons = {status["cron"]: status for status in report["crons"]}
    assert crons["background-jobs"]["lastWindow"] is None
    assert report["pipeline"]["overdueRuns"] == 0
    cron_client.get("/api/cron/background-jobs")
    cron_override_set(cron="background-jobs", mode="pause", reason="incident", actor="bob",
                      now=timezone.now())
    report = json.loads(_run("cron_status", "--json")[0])
    status = {status["cron"]: status for status in report["crons"]}["background-jobs"]
    assert (status["mode"], status["modeSource"]) == ("paused", "override")
    assert status["lastWindow"]["status"] == "enqueued" and status["queued"] == 2
    assert "paused (override)" in _run("cron_status")[0]
