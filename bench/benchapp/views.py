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


@csrf_exempt
@login_not_required
def baseline_view(request):
    expected = f"Bearer {settings.CRON_SECRET}".encode()
    given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
    if not hmac.compare_digest(given, expected):
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

    expected = f"Bearer {settings.CRON_SECRET}".encode()
    given = request.headers.get("Authorization", "").encode("utf-8", "surrogateescape")
    if not hmac.compare_digest(given, expected):
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
