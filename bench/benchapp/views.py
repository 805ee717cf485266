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
