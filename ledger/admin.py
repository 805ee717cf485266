from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from ledger.models import ConcurrencySlot, FunctionAttempt, FunctionRun, RunReason
from ledger.services import function_runs_cancel


class FunctionAttemptInline(admin.TabularInline):
    model = FunctionAttempt
    extra = 0
    can_delete = False
    fields = ("number", "outcome", "started_at", "finished_at", "duration_ms", "worker_host",
              "worker_pid", "error")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(FunctionRun)
class FunctionRunAdmin(admin.ModelAdmin):
    list_display = ("id", "function", "cron", "status", "reason", "attempt", "source",
                    "queued_at", "duration_ms", "window_link")
    list_filter = ("status", "reason", "function", "cron", "source",
                   ("queued_at", admin.DateFieldListFilter))
    search_fields = ("dispatch_key", "correlation_id", "task_id")
    date_hierarchy = "queued_at"
    inlines = [FunctionAttemptInline]
    actions = ["cancel_queued"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields] + ["window_link"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def lookup_allowed(self, lookup, value, request=None):
        return lookup == "dispatch_key" or super().lookup_allowed(lookup, value, request)

    @admin.display(description="window")
    def window_link(self, run: FunctionRun) -> str:
        if not run.dispatch_key:
            return "-"
        url = reverse("admin:cron_dispatchwindow_changelist") + f"?dispatch_key={run.dispatch_key}"
        return format_html('<a href="{}">{}</a>', url, run.dispatch_key)

    @admin.action(description="Cancel the selected queued runs")
    def cancel_queued(self, request, queryset):
        count = function_runs_cancel(run_ids=queryset.values_list("pk", flat=True),
                                     reason=RunReason.CANCELLED_BY_OPERATOR, now=timezone.now())
        self.message_user(request, f"Cancelled {count} queued run(s); running runs cannot be "
                          "stopped from here.", messages.INFO)


@admin.register(ConcurrencySlot)
class ConcurrencySlotAdmin(admin.ModelAdmin):
    list_display = ("function", "key", "slot", "run", "acquired_at")
    readonly_fields = ("function", "key", "slot", "run", "acquired_at")

    def has_add_permission(self, request):
        return False
