"""The ledger in the admin: read-only (no add, change or delete: the audit trail stays), with the
columns that answer "what failed, why, what is stuck", and two recorded actions: cancel queued
runs, retry failed ones. Django-Q's own tables and the slot helper table are kept out of the
operator's way: the ledger is the record."""

from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django_q import models as q_models

from ledger.display import age, alert, duration, first_line
from ledger.models import FunctionAttempt, FunctionRun, RunReason, RunStatus
from ledger.operator import function_run_retry
from ledger.selectors import function_run_is_overdue, function_runs_overdue_q
from ledger.services import function_runs_cancel

for _model in (q_models.Schedule, q_models.Success, q_models.Failure, q_models.OrmQ):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows the service writes; operators read them and act through recorded actions."""

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields] + list(self.extra_readonly)

    extra_readonly: tuple = ()

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class FunctionAttemptInline(admin.TabularInline):
    model = FunctionAttempt
    extra = 0
    can_delete = False
    fields = ("number", "outcome", "started_at", "finished_at", "duration_ms", "worker_host",
              "worker_pid", "error")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


class DeadlineFilter(admin.SimpleListFilter):
    title = "deadline"
    parameter_name = "deadline"

    def lookups(self, request, model_admin):
        return [("past", "past its deadline (stuck)")]

    def queryset(self, request, queryset):
        if self.value() == "past":
            return queryset.filter(function_runs_overdue_q(now=timezone.now()))
        return queryset


@admin.register(FunctionRun)
class FunctionRunAdmin(ReadOnlyAdmin):
    list_display = ("id", "function", "cron", "status_shown", "reason", "attempts_shown",
                    "source", "queued_at", "age_shown", "duration_shown", "error_shown",
                    "window_link")
    list_filter = (DeadlineFilter, "status", "reason", "function", "cron", "source",
                   ("queued_at", admin.DateFieldListFilter))
    search_fields = ("dispatch_key", "correlation_id", "task_id")
    date_hierarchy = "queued_at"
    inlines = [FunctionAttemptInline]
    actions = ["retry_failed", "cancel_queued"]
    extra_readonly = ("window_link", "status_shown", "attempts_shown", "duration_shown")
    list_per_page = 50
    # The run's page answers "did it work, and if not why" first.
    fieldsets = (
        ("Outcome", {"fields": ("status_shown", "reason", "attempts_shown", "duration_shown",
                                "error", "result")}),
        ("When (UTC)", {"fields": ("queued_at", "enqueued_at", "next_attempt_at", "started_at",
                                   "heartbeat_at", "lease_expires_at", "finished_at")}),
        ("What", {"fields": ("function", "cron", "source", "window_link", "dispatch_key",
                             "task_id", "correlation_id", "params")}),
        ("Details", {"classes": ("collapse",),
                     "fields": ("payload", "inline", "idempotency_key", "concurrency_key",
                                "overlap", "overlap_key", "attempt", "max_attempts",
                                "claim_token")}),
    )

    def lookup_allowed(self, lookup, value, request=None):
        return lookup == "dispatch_key" or super().lookup_allowed(lookup, value, request)

    def has_operate_permission(self, request):
        return request.user.has_perm("ledger.change_functionrun")

    @admin.display(description="status", ordering="status")
    def status_shown(self, run: FunctionRun):
        if function_run_is_overdue(run, now=timezone.now()):
            return alert(f"{run.status}: past deadline",
                         title="queued past the re-send threshold, or running with an expired "
                               "lease: the sweeper should recover it; is a cluster running?")
        if run.status == RunStatus.FAILED:
            return alert(run.status)
        return run.status

    @admin.display(description="attempts")
    def attempts_shown(self, run: FunctionRun) -> str:
        return f"{run.attempt}/{run.max_attempts}"

    @admin.display(description="age", ordering="queued_at")
    def age_shown(self, run: FunctionRun) -> str:
        return age(run.queued_at, now=timezone.now())

    @admin.display(description="duration", ordering="duration_ms")
    def duration_shown(self, run: FunctionRun) -> str:
        return duration(run.duration_ms)

    @admin.display(description="error")
    def error_shown(self, run: FunctionRun) -> str:
        return first_line(run.error, 120) or "-"

    @admin.display(description="window")
    def window_link(self, run: FunctionRun) -> str:
        if not run.dispatch_key:
            return "-"
        url = reverse("admin:cron_dispatchwindow_changelist") + f"?dispatch_key={run.dispatch_key}"
        return format_html('<a href="{}">{}</a>', url, run.dispatch_key)

    @admin.action(description="Retry the selected failed, cancelled or skipped runs (new runs)",
                  permissions=["operate"])
    def retry_failed(self, request, queryset):
        now, actor = timezone.now(), request.user.get_username()
        retried = []
        for run in queryset.order_by("pk"):
            retry = function_run_retry(run=run, source="admin", actor=actor, now=now)
            if retry is not None:
                retried.append(retry)
                self.log_change(request, run, f"Retried from the admin as run {retry.pk}.")
        left = queryset.count() - len(retried)
        level = messages.SUCCESS if retried else messages.WARNING
        self.message_user(request, f"Retried {len(retried)} run(s) as new runs "
                          f"({', '.join(f'#{run.pk}' for run in retried) or 'none'}); {left} "
                          "still queued, running or succeeded were left alone.", level)

    @admin.action(description="Cancel the selected queued runs", permissions=["operate"])
    def cancel_queued(self, request, queryset):
        selected = queryset.count()
        queued = list(queryset.filter(status=RunStatus.QUEUED).values_list("pk", flat=True))
        now = timezone.now()
        count = function_runs_cancel(run_ids=queued, reason=RunReason.CANCELLED_BY_OPERATOR,
                                     now=now)
        for run in FunctionRun.objects.filter(pk__in=queued, status=RunStatus.CANCELLED,
                                              finished_at=now):
            self.log_change(request, run, "Cancelled from the admin.")
        level = messages.SUCCESS if count else messages.WARNING
        self.message_user(request, f"Cancelled {count} queued run(s); {selected - count} not "
                          "queued were left alone (running runs cannot be stopped from here).",
                          level)
