"""Operators' view of webhook events: read-only (no add, change or delete: failed events stay
for inspection), filters, search, error and age columns, the raw body shown safely, the records
an event produced, and a recorded requeue of failed events. The drain's doorbell row is a helper
table and stays out of the admin."""

from django.contrib import admin, messages
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from ledger.display import age, first_line
from webhooks.models import EventStatus, WebhookEvent
from webhooks.services import webhook_events_requeue
from webhooks.text import clean_text

RAW_BODY_DISPLAY_BYTES = 64 * 1024


@admin.register(WebhookEvent)
class WebhookEventAdmin(admin.ModelAdmin):
    list_display = ("id", "event_type", "status", "attempts_shown", "received_at", "age_shown",
                    "next_attempt_at", "processed_at", "error_shown", "lead_email",
                    "produced_links")
    list_filter = ("event_type", "status", ("received_at", admin.DateFieldListFilter), "source")
    search_fields = ("dedupe_key", "lead_email")
    date_hierarchy = "received_at"
    actions = ["requeue_failed"]
    exclude = ("raw_body",)
    show_full_result_count = False  # no COUNT(*) over millions of finished events per page

    def get_readonly_fields(self, request, obj=None):
        names = [field.name for field in self.model._meta.fields if field.name != "raw_body"]
        return names + ["raw_body_display", "produced_links"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_requeue_permission(self, request):
        return request.user.has_perm("webhooks.change_webhookevent")

    @admin.display(description="attempts", ordering="attempts")
    def attempts_shown(self, event: WebhookEvent) -> str:
        return f"{event.attempts}/{event.max_attempts}"

    @admin.display(description="age", ordering="received_at")
    def age_shown(self, event: WebhookEvent) -> str:
        return age(event.received_at, now=timezone.now())

    @admin.display(description="last error")
    def error_shown(self, event: WebhookEvent) -> str:
        return first_line(event.last_error, 120) or "-"

    @admin.display(description="raw body (as received; invalid UTF-8 shown as \ufffd)")
    def raw_body_display(self, event: WebhookEvent) -> str:
        raw = bytes(event.raw_body or b"")
        text = clean_text(raw[:RAW_BODY_DISPLAY_BYTES].decode("utf-8", "replace"))
        more = len(raw) - RAW_BODY_DISPLAY_BYTES
        note = f"\n… {more} more bytes not shown" if more > 0 else ""
        return format_html('<pre style="white-space: pre-wrap">{}{}</pre>', text, note)

    @admin.display(description="produced")
    def produced_links(self, event: WebhookEvent) -> str:
        produced = (event.result or {}).get("produced") or {}
        links = []
        for label, reference in produced.items():
            url = admin_url(str(reference))
            links.append((url, f"{label} {str(reference).rpartition(':')[2]}") if url else
                         ("#", f"{label} {reference}"))
        return format_html_join(", ", '<a href="{}">{}</a>', links) if links else "-"

    @admin.action(description="Requeue the selected failed events (attempts reset to 0)",
                  permissions=["requeue"])
    def requeue_failed(self, request, queryset):
        failed = queryset.filter(status=EventStatus.FAILED)
        events = list(failed.only("pk", "event_type", "status"))
        count = webhook_events_requeue(event_ids=[event.pk for event in events],
                                       now=timezone.now(), actor=request.user.get_username())
        for event in events:
            self.log_change(request, event, "Requeued from the admin: status failed -> pending, "
                            "attempts reset to 0.")
        skipped = queryset.count() - count
        self.message_user(request, f"Requeued {count} failed event(s); {skipped} not failed "
                          "were left alone.", messages.INFO)


def admin_url(reference: str) -> str | None:
    """``"app.model:pk"`` -> that object's admin change page, when it is registered."""
    label, _, pk = reference.partition(":")
    app_label, _, model = label.partition(".")
    try:
        return reverse(f"admin:{app_label}_{model}_change", args=[pk])
    except NoReverseMatch:
        return None

