"""The status page (``/admin/status/``): every cron's mode and why, last window and run, the
last 24 h, what is queued, running or stuck, the next window, and the pipeline around them; with
its two recorded actions, dispatch now and set an override. Overrides and their audit trail are
listed read-only: a change needs a reason, so it is made here or with ``manage.py
cron_override``."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_POST

from cron.admin.windows import outcome_message
from cron.exceptions import CronError
from cron.models import CronOverride, CronOverrideAudit
from cron.operator import cron_dispatch_now
from cron.overrides import MODE_CHOICES, cron_override_set
from cron.registry import get_cron
from cron.selectors import cron_statuses, pipeline_status
from cron.services import Source
from ledger.admin import ReadOnlyAdmin
from ledger.display import age, duration, seconds_text, utc_seconds

OPERATE = "cron.operate_cron"
CLUSTER_STALE_SECONDS = 120


@admin.register(CronOverride)
class CronOverrideAdmin(ReadOnlyAdmin):
    list_display = ("cron", "mode", "reason", "set_by", "set_at")


@admin.register(CronOverrideAudit)
class CronOverrideAuditAdmin(ReadOnlyAdmin):
    list_display = ("at", "cron", "old_mode", "new_mode", "actor", "source", "reason")
    list_filter = ("cron", "source")
    search_fields = ("reason", "actor")


def status_view(request):
    now = timezone.now()
    pipeline = pipeline_status(now=now)
    context = {
        **admin.site.each_context(request),
        "title": "Cron status",
        "is_nav_sidebar_enabled": False,  # the table needs the width
        "now": utc_seconds(now),
        "crons": [_row(status, now) for status in cron_statuses(now=now)],
        "pipeline": _pipeline(pipeline),
        "modes": MODE_CHOICES,
        "can_operate": request.user.has_perm(OPERATE),
    }
    return TemplateResponse(request, "admin/cron/status.html", context)


@require_POST
def status_act(request):
    """``action=dispatch`` or ``action=override`` (``mode``, ``reason``) for ``cron``."""
    if not request.user.has_perm(OPERATE):
        raise PermissionDenied
    name, action = request.POST.get("cron", ""), request.POST.get("action", "")
    cron = get_cron(name)
    actor = request.user.get_username()
    if cron is None:
        messages.error(request, f"No cron named {name!r}.")
    elif action == "dispatch":
        outcome = cron_dispatch_now(cron=cron, source=Source.ADMIN, actor=actor,
                                    now=timezone.now())
        outcome_message(request, cron.name, outcome)
    elif action == "override":
        mode = request.POST.get("mode", "")
        try:
            cron_override_set(cron=cron.name, mode=mode, reason=request.POST.get("reason", ""),
                              actor=actor, now=timezone.now(), source="admin")
        except CronError as error:
            messages.error(request, f"{cron.name}: {error}")
        else:
            messages.success(request, f"{cron.name}: override {mode} (audited).")
    else:
        messages.error(request, f"Unknown action {action!r}.")
    return redirect("ops_status")


def status_urls() -> list:
    """Mounted at ``admin/status/`` by the project's urls, before the admin's own."""
    return [
        path("", admin.site.admin_view(status_view), name="ops_status"),
        path("act/", admin.site.admin_view(status_act), name="ops_status_act"),
    ]


def _row(status: dict, now) -> dict:
    window, run = status["lastWindow"], status["lastRun"]
    rate = status["successRate24h"]
    return {
        **status,
        "modeAlert": status["mode"] == "paused" or status["modeSource"] != "env",
        "lastWindowAt": utc_seconds(window["windowStart"]) if window else "-",
        "lastWindowAge": age(window["windowStart"], now=now) if window else "",
        "lastRunAt": utc_seconds(run["finishedAt"]) if run else "-",
        "lastRunDuration": duration(run["durationMs"]) if run else "-",
        "successRate": f"{rate * 100:.1f}%" if rate is not None else "-",
        "p95": duration(status["p95DurationMs24h"]),
        "nextWindow": utc_seconds(status["nextWindowStart"]),
        "runFailed": bool(run and run["status"] == "failed"),
    }


def _pipeline(pipeline: dict) -> dict:
    cluster, sweeper, hooks = pipeline["cluster"], pipeline["sweeper"], pipeline["webhooks"]
    cluster_age = cluster["ageSeconds"]
    return {
        **pipeline,
        "clusterSeen": (f"{utc_seconds(cluster['at'])} ({seconds_text(cluster_age)} ago)"
                        if cluster["at"] else "never"),
        "clusterAlert": cluster_age is None or cluster_age > CLUSTER_STALE_SECONDS,
        "sweeperNext": utc_seconds(sweeper["nextRunAt"]) if sweeper["scheduled"] else "",
        "webhookOldestDue": (f"the oldest due for {seconds_text(hooks['oldestDueAgeSeconds'])}"
                             if hooks["oldestDueAgeSeconds"] is not None else ""),
    }
