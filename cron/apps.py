from django.apps import AppConfig


class CronConfig(AppConfig):
    name = "cron"
    verbose_name = "Crons"

    def ready(self) -> None:
        from cron import checks  # noqa: F401  (registers the system checks)
        from cron.catalog import register_catalog
        from cron.maintenance import (
            dispatch_windows_prune,
            dispatch_windows_settle,
            paused_triggers_prune,
        )
        from ledger.maintenance import register_maintenance_step

        register_catalog()
        register_maintenance_step("windowsSettled", dispatch_windows_settle, every_sweep=True)
        register_maintenance_step(
            "windowsPruned", lambda *, now: {"deleted": dispatch_windows_prune(now=now)}
        )
        register_maintenance_step(
            "pausedTriggersPruned", lambda *, now: {"deleted": paused_triggers_prune(now=now)}
        )
