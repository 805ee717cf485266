from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    verbose_name = "Webhooks"

    def ready(self) -> None:
        from ledger.maintenance import register_maintenance_step
        from ledger.metrics import register_label_values
        from webhooks import checks  # noqa: F401  (registers the system checks)
        from webhooks.claims import webhook_events_rescue
        from webhooks.registry import EVENT_TYPES
        from webhooks.selectors import webhook_queue_health
        from webhooks.services import webhook_events_prune
        from webhooks.wake import webhook_events_wake

        register_label_values("event_type", EVENT_TYPES)  # any other type: "other"
        register_maintenance_step("webhookLeases", webhook_events_rescue, every_sweep=True)
        register_maintenance_step("webhookHealth", webhook_queue_health)
        register_maintenance_step(
            "webhooksPruned", lambda *, now: {"deleted": webhook_events_prune(now=now)}
        )
        register_maintenance_step("webhooksWoken", webhook_events_wake, every_sweep=True)
