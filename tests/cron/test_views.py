"""Every row of CONTRACT.md's responses table, over the real URL."""

import threading

import pytest
from django.db import connection
from django.test import Client, override_settings
from django_q.models import OrmQ
from freezegun import freeze_time

from cron import keys
from cron.models import DispatchWindow, WindowStatus
from ledger.enqueue import broker_is_transactional
from ledger.models import FunctionRun, RunReason, RunStatus
from tests.conftest import CRON_SECRET
from tests.security_suite import AuthenticatedRouteSuite

URL = "/api/cron/background-jobs"


def runs_of(key: str):
    return FunctionRun.objects.filter(dispatch_key=key).order_by("function")


@pytest.mark.django_db
def test_dispatch__new_window_is_202_with_task_ids(cron_client):
    """A new window: 202 dispatch-only, one window row, one queued run per function."""
    with freeze_time("2026-02-17T19:31:42.250Z"):
        response = cron_client.get(URL)
    assert response.status_code == 202
    body = response.json()
    key = "background-jobs:v1:60:2026-02-17T19:31:00Z"
    assert body["mode"] == "dispatch-only"
    assert body["success"] is True and body["enqueued"] is True
    assert body["taskIds"] == [keys.task_id("bg-process", key), keys.task_id("bg-maint", key)]
    assert body["dispatch"] == {
        "source": "cron:http",
        "requestedAt": "2026-02-17T19:31:42.250Z",
        "dispatchKey": key,
        "correlationId": body["dispatch"]["correlationId"],
        "dispatchWindowStart": "2026-02-17T19:31:00Z",
        "dispatchWindowSeconds": 60,
        "params": {},
    }
    assert body["timestamp"].endswith("Z")
    window = DispatchWindow.objects.get()
    assert window.dispatch_key == key and window.status == WindowStatus.ENQUEUED
    assert window.task_ids == body["taskIds"]
    runs = list(runs_of(key))
    assert [run.function for run in runs] == ["background-maintenance", "process-background-jobs"]
    assert all(run.status == RunStatus.QUEUED and run.source == "cron:http" for run in runs)
    assert all(run.payload == body["dispatch"] for run in runs)
    if broker_is_transactional():
        assert OrmQ.objects.count() == 2


@pytest.mark.django_db
def test_dispatch__same_window_is_suppressed_as_duplicate(cron_client):
    """A second trigger in the window: 200, nothing enqueued, the first dispatch described."""
    with freeze_time("2026-02-17T19:31:01Z"):
        first = cron_client.get(URL, HTTP_X_CORRELATION_ID="first-call").json()
    with freeze_time("2026-02-17T19:31:59.999Z"):
        response = cron_client.post(URL, HTTP_X_CORRELATION_ID="second-call")
    assert response.status_code == 200
    body = response.json()
    assert body["mode"] == "dispatch-duplicate-suppressed"
    assert body["enqueued"] is False
    assert body["existingDispatch"]["status"] == "enqueued"
    assert body["existingDispatch"]["correlationId"] == "first-call"
    assert body["existingDispatch"]["taskIds"] == first["taskIds"]
    assert body["existingDispatch"]["updatedAt"] == "2026-02-17T19:31:01.000Z"
    assert body["dispatch"]["correlationId"] == "second-call"
    assert FunctionRun.objects.count() == 2
    assert DispatchWindow.objects.count() == 1


@pytest.mark.django_db
def test_dispatch__next_window_dispatches_again(cron_client):
    """…:59.999 and …:00.000 are different windows: two dispatches. The first window's runs
    are still queued (no worker here), so the second's are skipped by background-jobs' overlap
    policy and it answers 200 ``enqueued: false``, not 202."""
    with freeze_time("2026-02-17T19:31:59.999Z"):
        assert cron_client.get(URL).status_code == 202
    with freeze_time("2026-02-17T19:32:00.000Z"):
        second = cron_client.get(URL)
    body = second.json()
    assert (second.status_code, body["mode"], body["enqueued"]) == (200, "dispatch-only", False)
    assert (body["skipped"], body["reason"]) == (True, RunReason.OVERLAP)
    assert [run["status"] for run in body["runs"]] == [RunStatus.SKIPPED] * 2
    assert DispatchWindow.objects.count() == 2


@pytest.mark.django_db
def test_overlap__a_run_left_running_by_a_dead_worker_does_not_skip_later_windows(cron_client):
    """A run ``running`` past its lease (its cluster was killed) is not in progress: the next
    window dispatches and is enqueued (the old behaviour skipped every window for good)."""
    from datetime import timedelta

    from django.utils import timezone

    with freeze_time("2026-02-17T19:31:00Z"):
        first = cron_client.get(URL).json()
        FunctionRun.objects.filter(dispatch_key=first["dispatch"]["dispatchKey"]).update(
            status=RunStatus.RUNNING, lease_expires_at=timezone.now() + timedelta(seconds=30))
    with freeze_time("2026-02-17T19:32:00Z"):
        response = cron_client.get(URL)
    assert response.status_code == 202 and response.json()["enqueued"] is True
    assert [run["status"] for run in response.json()["runs"]] == [RunStatus.QUEUED] * 2


@pytest.mark.django_db
def test_inline__flag_off_runs_inline_with_result_keys_at_top_level(cron_client, make_cron):
    """Dispatch flag off: 200 mode inline, the cron's result keys at top level, ledger run."""
    seen = []
    make_cron("report", use_queue=False, allowed_params={"limit"},
              functions=[("report-fn", "report", lambda p: seen.append(p) or {"rows": 3})])
    response = cron_client.get("/api/cron/report?limit=5")
    assert response.status_code == 200
    body = response.json()
    assert body["mode"] == "inline" and body["enqueued"] is False
    assert body["rows"] == 3
    assert seen[0]["params"] == {"limit": "5"}
    run = FunctionRun.objects.get(function="report-fn")
    assert run.status == RunStatus.SUCCEEDED and run.inline and run.source == "cron:http"
    assert run.result == {"rows": 3}
    assert run.params == {"limit": "5"}
    assert not DispatchWindow.objects.exists()


@pytest.mark.django_db
def test_inline__flag_setting_switches_the_cron_to_dispatch(cron_client, make_cron):
    """CRON_<NAME>_USE_QUEUE on: the same cron dispatches instead."""
    make_cron("report", use_queue=False)
    with override_settings(CRON_REPORT_USE_QUEUE=True):
        response = cron_client.get("/api/cron/report")
    assert response.status_code == 202
    assert response.json()["mode"] == "dispatch-only"


@pytest.mark.django_db
@override_settings(BACKGROUND_JOBS_FORCE_INLINE=True)
def test_inline__forced_inline_runs_background_jobs_here(cron_client):
    """BACKGROUND_JOBS_FORCE_INLINE: 200 inline-forced with both functions' results."""
    response = cron_client.get(URL)
    assert response.status_code == 200
    body = response.json()
    assert body["mode"] == "inline-forced"
    assert body["process-background-jobs"]["processed"] == 0
    assert "runs" in body["background-maintenance"]
    assert FunctionRun.objects.filter(status=RunStatus.SUCCEEDED, inline=True).count() == 2
    assert not DispatchWindow.objects.exists()


@pytest.mark.django_db
def test_inline__a_raising_function_is_500_and_failed_in_the_ledger(cron_client, make_cron):
    """An inline run that raises: 500 with error and message; the ledger holds it failed."""

    def explode(payload):
        raise RuntimeError("provider said no")

    make_cron("fragile", use_queue=False, functions=[("fragile-fn", "fragile", explode)])
    response = cron_client.get("/api/cron/fragile")
    assert response.status_code == 500
    body = response.json()
    assert body["mode"] == "inline"
    assert body["error"] == "inline run failed"
    assert "provider said no" in body["message"]
    run = FunctionRun.objects.get(function="fragile-fn")
    assert run.status == RunStatus.FAILED and run.reason == RunReason.ERROR
    assert "provider said no" in run.error


@pytest.mark.django_db(transaction=True)
def test_inline__second_run_while_first_holds_the_lock_is_skipped(make_cron):
    """Two inline runs at once: the second gets skipped: true, reason locked."""
    started, release = threading.Event(), threading.Event()

    def slow(payload):
        started.set()
        assert release.wait(20)
        return {"done": True}

    make_cron("slow", use_queue=False, functions=[("slow-fn", "slow", slow)])
    responses = {}

    def first_call():
        responses["first"] = Client(HTTP_AUTHORIZATION=f"Bearer {CRON_SECRET}").get(
            "/api/cron/slow")
        connection.close()

    thread = threading.Thread(target=first_call)
    thread.start()
    try:
        assert started.wait(20)
        second = Client(HTTP_AUTHORIZATION=f"Bearer {CRON_SECRET}").get("/api/cron/slow")
    finally:
        release.set()
        thread.join(30)
    assert second.status_code == 200
    assert second.json()["skipped"] is True and second.json()["reason"] == "locked"
    assert responses["first"].json()["done"] is True
    statuses = sorted(FunctionRun.objects.values_list("status", "reason"))
    assert statuses == [("skipped", "locked"), ("succeeded", "")]


@pytest.mark.django_db
def test_params__unknown_param_is_400_naming_the_allowed_ones(cron_client, make_cron):
    make_cron("report", allowed_params={"limit", "dryRun"})
    response = cron_client.get("/api/cron/report?limit=1&bogus=2")
    assert response.status_code == 400
    body = response.json()
    assert body["success"] is False
    assert "bogus" in body["error"] and "dryRun, limit" in body["error"]
    assert body["allowedParams"] == ["dryRun", "limit"]
    assert not DispatchWindow.objects.exists()


@pytest.mark.django_db
def test_params__background_jobs_takes_none(cron_client):
    response = cron_client.get(URL + "?workspaceLimit=3")
    assert response.status_code == 400
    assert "accepts: none" in response.json()["error"]


@pytest.mark.django_db
def test_params__reach_the_job_in_dispatch_mode_and_key_the_window(cron_client, make_cron):
    """Params are the run's params in dispatch mode too; they suffix the key; empties drop."""
    make_cron("report", allowed_params={"limit", "dryRun"})
    with freeze_time("2026-02-17T19:31:00Z"):
        body = cron_client.get("/api/cron/report?dryRun=&limit=7").json()
        again = cron_client.get("/api/cron/report?limit=7").json()
        other = cron_client.get("/api/cron/report?limit=8").json()
    assert body["dispatch"]["params"] == {"limit": "7"}
    assert body["dispatch"]["dispatchKey"] == (
        "report:v1:60:2026-02-17T19:31:00Z:" + keys.params_hash({"limit": "7"})
    )
    assert again["mode"] == "dispatch-duplicate-suppressed"
    assert other["mode"] == "dispatch-only"
    run = FunctionRun.objects.get(dispatch_key=body["dispatch"]["dispatchKey"])
    assert run.payload["params"] == {"limit": "7"}


@pytest.mark.django_db
def test_window__override_setting_changes_the_window(cron_client, make_cron):
    make_cron("report")
    with override_settings(CRON_REPORT_DISPATCH_WINDOW_SECONDS=300), \
            freeze_time("2026-02-17T19:34:59Z"):
        body = cron_client.get("/api/cron/report").json()
    assert body["dispatch"]["dispatchKey"] == "report:v1:300:2026-02-17T19:30:00Z"
    assert body["dispatch"]["dispatchWindowSeconds"] == 300


@pytest.mark.django_db
def test_correlation_id__header_kept_or_replaced_with_a_uuid(cron_client):
    with freeze_time("2026-02-17T19:31:00Z"):
        kept = cron_client.get(URL, HTTP_X_REQUEST_ID="req.42:a-b_c").json()
    with freeze_time("2026-02-17T19:33:00Z"):
        replaced = cron_client.get(URL, HTTP_X_CORRELATION_ID="bad id!").json()
    assert kept["dispatch"]["correlationId"] == "req.42:a-b_c"
    import uuid

    assert uuid.UUID(replaced["dispatch"]["correlationId"]).version == 4


@pytest.mark.django_db
def test_routes__unknown_cron_is_404(cron_client):
    assert cron_client.get("/api/cron/nope").status_code == 404


@pytest.mark.django_db
@override_settings(CRON_SECRET="")
def test_auth__unset_secret_is_503_not_configured():
    response = Client().get(URL, HTTP_AUTHORIZATION="Bearer anything")
    assert response.status_code == 503
    assert response.json() == {"success": False, "error": "cron endpoint not configured"}


@pytest.mark.django_db
def test_auth__x_cron_secret_header_is_accepted():
    response = Client().post(URL, HTTP_X_CRON_SECRET=CRON_SECRET)
    assert response.status_code == 202


class TestCronRouteSecurity(AuthenticatedRouteSuite):
    url = URL
    credential = CRON_SECRET

    def credential_headers(self, value):
        return [{"HTTP_AUTHORIZATION": f"Bearer {value}"}, {"HTTP_X_CRON_SECRET": value}]

    def stored_rows(self):
        return DispatchWindow.objects.count() + FunctionRun.objects.count()

    def good_headers(self):
        return {"HTTP_AUTHORIZATION": f"Bearer {CRON_SECRET}"}

    def wrong_headers(self):
        return [
            {"HTTP_AUTHORIZATION": "Bearer wrong"},
            {"HTTP_AUTHORIZATION": f"Basic {CRON_SECRET}"},
            {"HTTP_AUTHORIZATION": f"Bearer {CRON_SECRET}x"},
            {"HTTP_AUTHORIZATION": "Bearer"},
            {"HTTP_X_CRON_SECRET": CRON_SECRET[:-1]},
            {"HTTP_X_CRON_SECRET": ""},
        ]

    def non_ascii_headers(self):
        return [
            {"HTTP_AUTHORIZATION": "Bearer sécret"},
            {"HTTP_X_CRON_SECRET": "秘密"},
            {"HTTP_AUTHORIZATION": "Bearer \udcff"},
        ]

    def test_wrong__body_is_the_contract_error(self):
        response = Client().get(self.url, HTTP_AUTHORIZATION="Bearer nope")
        assert response.json() == {"success": False, "error": "unauthorized"}


@pytest.mark.django_db
def test_overlap__skip_is_per_cron_and_params(cron_client, make_cron):
    """A window whose previous run (same params) is still queued is skipped; other params run."""
    make_cron("report", allowed_params={"clientId"}, **{"report-fn_controls": {"overlap": "skip"}})
    with freeze_time("2026-02-17T19:31:00Z"):
        cron_client.get("/api/cron/report?clientId=1")
    with freeze_time("2026-02-17T19:32:00Z"):
        same = cron_client.get("/api/cron/report?clientId=1").json()
        other = cron_client.get("/api/cron/report?clientId=2").json()
    statuses = dict(FunctionRun.objects.values_list("dispatch_key", "status"))
    assert statuses[same["dispatch"]["dispatchKey"]] == RunStatus.SKIPPED
    assert statuses[other["dispatch"]["dispatchKey"]] == RunStatus.QUEUED
    skipped = FunctionRun.objects.get(dispatch_key=same["dispatch"]["dispatchKey"])
    assert skipped.reason == RunReason.OVERLAP and skipped.enqueued_at is None


@pytest.mark.django_db
def test_duplicate__answered_from_one_read_of_the_window(cron_client):
    """A retry storm on a dispatched window: the INSERT the unique key refuses, one read of the
    window by its key, nothing else written; the body names the first dispatch."""
    from django.test.utils import CaptureQueriesContext

    with freeze_time("2026-02-17T19:31:01Z"):
        cron_client.get(URL, HTTP_X_CORRELATION_ID="first")
        with CaptureQueriesContext(connection) as queries:
            response = cron_client.get(URL, HTTP_X_CORRELATION_ID="second")
    body = response.json()
    assert (response.status_code, body["mode"]) == (200, "dispatch-duplicate-suppressed")
    assert body["existingDispatch"]["correlationId"] == "first"
    statements = [q["sql"] for q in queries.captured_queries
                  if not q["sql"].startswith(("SAVEPOINT", "RELEASE", "ROLLBACK"))
                  and "cron_cronoverride" not in q["sql"]]  # every trigger reads its override
    assert [sql.split()[0] for sql in statements] == ["INSERT", "SELECT"], statements
    assert DispatchWindow.objects.count() == 1 and FunctionRun.objects.count() == 2
