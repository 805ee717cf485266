"""The baseline: the least work for the cron route's outcome. Authenticate, then in one
transaction one INSERT and one ``async_task`` per function background-jobs enqueues (two), with
one broker object reused per process, and a small JSON 202."""

import hmac
import os

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django_q.brokers import get_broker
from django_q.tasks import async_task

from bench.benchapp.models import BenchRow

TASKS = ("bg-process", "bg-maint")
_broker = None


def _reused_broker():
    global _broker
    if _broker is None or _broker[0] != os.getpid():
        _broker = (os.getpid(), get_broker())
    return _broker[1]


def _authorized(request) -> bool:
    """The cron route's Bearer check, in constant time."""
    expected = f"Bearer {settings.CRON_SECRET}".encode()
    given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
    return hmac.compare_digest(given, expected)


@csrf_exempt
@login_not_required
def baseline_view(request):
    if not _authorized(request):
        return JsonResponse({"success": False, "error": "unauthorized"}, status=401)
    broker = _reused_broker()
    now = timezone.now()
    with transaction.atomic():
        row = BenchRow.objects.create(key=request.GET.get("n", ""), created_at=now)
        task_ids = [
            async_task("ledger.tasks.execute_run", row.pk,
                       q_options={"task_name": f"{prefix}:{row.pk}", "broker": broker,
                                  "timeout": 135})
            for prefix in TASKS
        ]
    return JsonResponse({"success": True, "enqueued": True, "taskIds": task_ids}, status=202)


@csrf_exempt
@login_not_required
def duplicate_floor_view(request):
    """For information, not a target: the least work to answer a duplicate of background-jobs,
    one indexed SELECT of the window by its dispatch key (no transaction, no failed INSERT), then
    the same response shape as the cron route's duplicate. When the window is not there yet (a
    new minute) it takes the real route, whose INSERT still decides any race."""
    from cron import conf, keys
    from cron.models import DispatchWindow
    from cron.registry import get_cron

    if not _authorized(request):
        return JsonResponse({"success": False, "error": "unauthorized"}, status=401)
    cron = get_cron("background-jobs")
    now = timezone.now()
    seconds = conf.window_seconds(cron)
    start = keys.window_start(now, seconds)
    key = keys.dispatch_key(cron.name, seconds, start, {})
    window = (DispatchWindow.objects.filter(dispatch_key=key)
              .values("status", "correlation_id", "task_ids", "updated_at").first())
    if window is None or window["status"] == "enqueue-failed":
        from cron.views import cron_view

        return cron_view(request, "background-jobs")
    return JsonResponse({
        "success": True, "mode": "dispatch-duplicate-suppressed", "enqueued": False,
        "timestamp": keys.iso_millis(now),
        "dispatch": {"dispatchKey": key, "dispatchWindowStart": keys.iso_seconds(start),
                     "dispatchWindowSeconds": seconds, "params": {}},
        "existingDispatch": {"status": window["status"],
                             "correlationId": window["correlation_id"],
                             "taskIds": window["task_ids"],
                             "updatedAt": keys.iso_millis(window["updated_at"])},
    })


@csrf_exempt
@login_not_required
def new_floor_view(request):
    """For information, not a target (``bench_dispatch.py --floor``): the least any dispatch that
    keeps the ledger's promise must do for a new window, with none of the route's logic. The
    rows a dispatch must write (the window, under its unique key, and one queued run per
    function, all columns filled as the route fills them) in one statement, then the tasks: on
    the ORM broker their rows in the same statement, on Redis one ``RPUSH`` after the commit,
    and nothing written after it (the route marks the window ``enqueued`` after the push)."""
    import uuid

    from django.db import connection

    from cron.models import DispatchWindow
    from ledger.db import insert_unless_taken
    from ledger.enqueue import HeldTasks, QueueRows, broker_is_transactional, enqueue_run, send_held
    from ledger.models import FunctionRun

    if not _authorized(request):
        return JsonResponse({"success": False, "error": "unauthorized"}, status=401)
    assert connection.vendor == "postgresql", "the floor's one statement needs PostgreSQL"
    now = timezone.now()
    params = {"n": request.GET.get("n", "")}
    key = f"bench-floor:v1:60:{now:%Y-%m-%dT%H:%M}:00Z:{uuid.uuid4().hex[:16]}"
    correlation = str(uuid.uuid4())
    task_ids = [f"{prefix}:{uuid.uuid4().hex[:24]}" for prefix in TASKS]
    payload = {"source": "cron:http", "requestedAt": now.isoformat(), "dispatchKey": key,
               "correlationId": correlation, "dispatchWindowStart": f"{now:%Y-%m-%dT%H:%M}:00Z",
               "dispatchWindowSeconds": 60, "params": params}
    window = DispatchWindow(
        dispatch_key=key, cron="bench-floor", window_start=now, window_seconds=60, params=params,
        status="enqueued", source="cron:http", correlation_id=correlation, requested_at=now,
        task_ids=task_ids, created_at=now, updated_at=now)
    runs = [FunctionRun(
        function=function, cron="bench-floor", dispatch_key=key, idempotency_key=key,
        task_id=task_id, correlation_id=correlation, source="cron:http", params=params,
        payload=payload, overlap="allow-all", overlap_key="bench-floor", max_attempts=4,
        queued_at=now, enqueued_at=now)
        for function, task_id in zip(("process-background-jobs", "background-maintenance"),
                                     task_ids)]
    held = QueueRows() if broker_is_transactional() else HeldTasks()
    for run in runs:
        enqueue_run(run.task_id, function=run.function, task_name=run.task_id,
                    timeout_seconds=120, into=held)
    extra = held.rows if broker_is_transactional() else []
    if not insert_unless_taken(window, conflict_field="dispatch_key", then=[*runs, *extra]):
        return JsonResponse({"success": True, "enqueued": False}, status=200)
    if not broker_is_transactional():
        send_held(held)
    return JsonResponse({"success": True, "enqueued": True, "taskIds": task_ids}, status=202)
