"""Dispatch windows and paused triggers: read-only, what each window's runs did (a window whose
runs never started does not read like a healthy one), and recorded actions."""

from collections import Counter

from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from cron.models import DispatchWindow, PausedTrigger
from cron.operator import cron_dispatch_now, dispatch_window_rerun
from cron.registry import get_cron
from cron.services import Mode, Source, TriggerOutcome
from ledger.admin import ReadOnlyAdmin
from ledger.display import age, alert, first_line
from ledger.models import FunctionRun
from ledger.selectors import function_run_is_overdue


def outcome_message(request, name: str, outcome: TriggerOutcome) -> None:
    """A dispatch's answer as a message: enqueued is a success, a suppressed duplicate a
    warning (nothing was enqueued), a failed enqueue an error."""
    key = outcome.payload["dispatchKey"]
    if outcome.mode == Mode.DISPATCH_ONLY:
        runs = Counter(FunctionRun.objects.filter(task_id__in=outcome.task_ids)
                       .values_list("status", flat=True))
        shown = ", ".join(f"{count} {status}" for status, count in sorted(runs.items()))
        level = messages.SUCCESS if runs.get("queued") else messages.WARNING
        messages.add_message(request, level, f"{name}: dispatched {key} (runs: {shown}).")
    elif outcome.mode == Mode.DUPLICATE:
        messages.warning(request, f"{name}: duplicate suppressed: {key} was dispatched already "
                         f"({outcome.window.status}); nothing enqueued. Re-run the window to "
                         "run its work again.")
    else:
        messages.error(request, f"{name}: {outcome.mode.value} {key} "
                       f"{outcome.enqueue_error}".strip())


@admin.register(DispatchWindow)
class DispatchWindowAdmin(ReadOnlyAdmin):
    list_display = ("dispatch_key", "cron", "status", "work", "window_start", "age_shown",
                    "source", "error_shown", "correlation_id", "runs_link")
    list_filter = ("cron", "status", "source", ("window_start", admin.DateFieldListFilter))
    search_fields = ("dispatch_key", "correlation_id")
    date_hierarchy = "window_start"
    actions = ["rerun_windows", "redispatch_now"]
    extra_readonly = ("work", "runs_link")
    list_per_page = 50

    def lookup_allowed(self, lookup, value, request=None):
        return lookup == "dispatch_key" or super().lookup_allowed(lookup, value, request)

    def has_operate_permission(self, request):
        return request.user.has_perm("cron.operate_cron")

    @admin.display(description="age", ordering="window_start")
    def age_shown(self, window: DispatchWindow) -> str:
        return age(window.window_start, now=timezone.now())

    @admin.display(description="enqueue error")
    def error_shown(self, window: DispatchWindow) -> str:
        return first_line(window.enqueue_error, 100) or "-"

    @admin.display(description="runs now")
    def work(self, window: DispatchWindow):
        """What the window's runs did: counts by status, in red when one is past its deadline
        (handed over, never started)."""
        runs = list(FunctionRun.objects.filter(task_id__in=list(window.task_ids or [])))
        if not runs:
            return "-"
        counts = Counter(run.status for run in runs)
        text = ", ".join(f"{count} {status}" for status, count in sorted(counts.items()))
        now = timezone.now()
        if any(function_run_is_overdue(run, now=now) for run in runs):
            return alert(f"{text} (past deadline)")
        return text

    @admin.display(description="runs")
    def runs_link(self, window: DispatchWindow) -> str:
        """The window's runs, by their task ids (the ledger's unique index)."""
        task_ids = list(window.task_ids or [])
        url = (reverse("admin:ledger_functionrun_changelist")
               + f"?task_id__in={','.join(task_ids)}")
        count = FunctionRun.objects.filter(task_id__in=task_ids).count()
        return format_html('<a href="{}">{} run(s)</a>', url, count)

    @admin.action(description="Re-run the selected windows (retry what did not succeed)",
                  permissions=["operate"])
    def rerun_windows(self, request, queryset):
        actor, now = request.user.get_username(), timezone.now()
        for window in queryset.order_by("window_start"):
            result = dispatch_window_rerun(window=window, source=Source.ADMIN, actor=actor,
                                           now=now)
            self.log_change(request, window, f"Re-run from the admin: {len(result.retried)} "
                            "run(s) retried.")
            self.message_user(
                request, f"{window.dispatch_key}: retried {len(result.retried)} run(s) "
                f"({', '.join(f'#{run.pk}' for run in result.retried) or 'none'}); "
                f"{len(result.succeeded)} succeeded and {len(result.active)} still queued or "
                "running were left alone.",
                messages.SUCCESS if result.retried else messages.WARNING)

    @admin.action(description="Dispatch these crons now (current window, same dedupe)",
                  permissions=["operate"])
    def redispatch_now(self, request, queryset):
        for name in sorted(set(queryset.values_list("cron", flat=True))):
            cron = get_cron(name)
            if cron is None:
                self.message_user(request, f"{name}: no longer registered", messages.ERROR)
                continue
            outcome = cron_dispatch_now(cron=cron, source=Source.ADMIN,
                                        actor=request.user.get_username(), now=timezone.now())
            outcome_message(request, name, outcome)


@admin.register(PausedTrigger)
class PausedTriggerAdmin(ReadOnlyAdmin):
    list_display = ("cron", "dispatch_key", "requested_at", "source", "correlation_id",
                    "override_reason")
    list_filter = ("cron", "source", ("requested_at", admin.DateFieldListFilter))
    search_fields = ("dispatch_key", "correlation_id")
