from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from cron.models import DispatchWindow
from cron.registry import get_cron
from cron.services import Mode, Source, Trigger, cron_trigger
from ledger.models import FunctionRun


@admin.register(DispatchWindow)
class DispatchWindowAdmin(admin.ModelAdmin):
    list_display = ("dispatch_key", "cron", "status", "window_start", "source", "correlation_id",
                    "runs_link", "updated_at")
    list_filter = ("cron", "status", "source", ("window_start", admin.DateFieldListFilter))
    search_fields = ("dispatch_key", "correlation_id")
    date_hierarchy = "window_start"
    actions = ["redispatch_now"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields] + ["runs_link"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def lookup_allowed(self, lookup, value, request=None):
        return lookup == "dispatch_key" or super().lookup_allowed(lookup, value, request)

    @admin.display(description="runs")
    def runs_link(self, window: DispatchWindow) -> str:
        """The window's runs, by their task ids (the ledger's unique index)."""
        task_ids = list(window.task_ids or [])
        url = (reverse("admin:ledger_functionrun_changelist")
               + f"?task_id__in={','.join(task_ids)}")
        count = FunctionRun.objects.filter(task_id__in=task_ids).count()
        return format_html('<a href="{}">{} run(s)</a>', url, count)

    @admin.action(description="Dispatch these crons now (current window, same dedupe)")
    def redispatch_now(self, request, queryset):
        for name in sorted(set(queryset.values_list("cron", flat=True))):
            cron = get_cron(name)
            if cron is None:
                self.message_user(request, f"{name}: no longer registered", messages.ERROR)
                continue
            outcome = cron_trigger(
                trigger=Trigger(cron=cron, source=Source.ADMIN, params={},
                                correlation_id=f"admin:{request.user.pk}:{timezone.now():%s}",
                                requested_at=timezone.now()),
                dispatch=True,
            )
            level = messages.ERROR if outcome.mode == Mode.DISPATCH_FAILED else messages.INFO
            self.message_user(request, f"{name}: {outcome.mode.value} "
                              f"{outcome.payload['dispatchKey']} {outcome.enqueue_error}", level)
