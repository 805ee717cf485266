"""availability, emailbison-availability-slot and appointment-reconcile over the real route:
flag off (inline) and on (dispatch) with the same params in the payload, and bad params."""

import pytest
from django.test import override_settings

from cron import keys
from jobs.models import AvailabilityCache, Client
from ledger.models import FunctionRun, RunStatus
from ledger.runner import execute_run
from tests.jobs.provider_server import Reply, provider_server  # noqa: F401

CRONS = {
    "availability": ("CRON_AVAILABILITY_USE_QUEUE", "cron-availability",
                     {"timeBudgetMs": "5000", "concurrency": "2"},
                     ["sources", "finishedWithinBudget", "durationMs"]),
    "emailbison/availability-slot": (
        "CRON_EMAILBISON_AVAILABILITY_SLOT_USE_QUEUE", "cron-emailbison-availability-slot",
        {"dryRun": "true", "timeBudgetMs": "5000"},
        ["dryRun", "clientsChecked", "clientsNotConfigured", "clientsWithoutAvailability",
         "leadsDue", "offered", "skippedRecentlyOffered", "skippedNoProviderLead",
         "skippedNoSlots", "errors", "errorsByKind", "finishedWithinBudget", "preview",
         "durationMs"]),
    "appointment-reconcile": (
        "CRON_APPOINTMENT_RECONCILE_USE_QUEUE", "cron-appointment-reconcile",
        {"workspaceLimit": "5", "leadsPerWorkspace": "10", "staleDays": "3", "dryRun": "1"},
        ["dryRun", "workspaces", "workspacesNotConfigured", "checked", "hotChecked",
         "warmChecked", "errors", "booked", "canceled", "rescheduled", "followUpsCompleted",
         "tasksCreated", "errorsByKind", "circuitBreakerTripped", "finishedWithinBudget",
         "durationMs"]),
}


@pytest.fixture
def configured(db, provider_server):
    """One client with every provider on the local server."""
    provider_server.script("GET", "/slots", Reply(200, {"slots": []}))
    return Client.objects.create(
        name="Acme", availability_source="json", booking_provider="json",
        first_touch_slot_offers=True, **{f"{kind}_{field}": value for kind in (
            "emailbison", "availability", "booking") for field, value in (
            ("base_url", provider_server.base_url), ("api_key", "k"))})


def query(params: dict) -> str:
    return "?" + "&".join(f"{name}={value}" for name, value in params.items())


@pytest.mark.parametrize("route", CRONS)
def test_route__flag_off_runs_inline_with_params(route, cron_client, configured):
    """Flag off: 200 inline, the cron's result keys at top level, the params in the payload."""
    flag, function, params, result_keys = CRONS[route]
    with override_settings(**{flag: False}):
        response = cron_client.get(f"/api/cron/{route}{query(params)}")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["mode"], body["success"]) == ("inline", True)
    assert set(result_keys) <= set(body)
    assert body["dispatch"]["params"] == params
    run = FunctionRun.objects.get()
    assert (run.function, run.status, run.payload) == (function, RunStatus.SUCCEEDED,
                                                       body["dispatch"])
    assert sorted(run.result) == sorted(result_keys)  # jsonb keeps no key order


@pytest.mark.parametrize("route", CRONS)
def test_route__flag_on_dispatches_with_params(route, cron_client, configured):
    """Flag on: 202 dispatch-only; the queued run gets the same params and succeeds."""
    flag, function, params, result_keys = CRONS[route]
    with override_settings(**{flag: True}):
        response = cron_client.post(f"/api/cron/{route}{query(params)}")
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["taskIds"] == [keys.task_id(function, body["dispatch"]["dispatchKey"])]
    run = FunctionRun.objects.get()
    assert run.payload["params"] == params
    run = execute_run(run.pk)
    assert run.status == RunStatus.SUCCEEDED and sorted(run.result) == sorted(result_keys)


def test_route__availability_inline_refreshes_the_cache(cron_client, configured,
                                                        provider_server):
    """The inline route does the work: the source is fetched and its cache written."""
    response = cron_client.get("/api/cron/availability")
    assert response.json()["sources"]["json"]["refreshed"] == 1
    assert AvailabilityCache.objects.get(client=configured).fetched_at is not None
    assert provider_server.requests_to("GET", "/slots")


@pytest.mark.parametrize("route,params,message", [
    ("availability", "timeBudgetMs=fast", "timeBudgetMs must be a whole number from 1000 to "
                                          "240000, got 'fast'"),
    ("availability", "concurrency=99", "concurrency must be from 1 to 16, got 99"),
    ("emailbison/availability-slot", "dryRun=maybe", "dryRun must be one of 1/true/yes/on or "
                                                     "0/false/no/off, got 'maybe'"),
    ("appointment-reconcile", "clientId=-3", "clientId must be a positive whole number, got "
                                             "'-3'"),
    ("appointment-reconcile", "staleDays=0", "staleDays must be from 1 to 365, got 0"),
])
def test_route__bad_param_fails_the_run_with_a_clear_message(route, params, message,
                                                            cron_client, db):
    """A param the job cannot use: the inline run fails once (not retried), naming it."""
    response = cron_client.get(f"/api/cron/{route}?{params}")
    assert response.status_code == 500
    assert response.json()["message"].endswith(f"InvalidParam: {message}")
    run = FunctionRun.objects.get()
    assert run.status == RunStatus.FAILED and run.error.startswith(f"InvalidParam: {message}")
