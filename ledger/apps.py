from django.apps import AppConfig
from django.db.models.signals import post_migrate


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = "Run ledger"

    def ready(self) -> None:
        from ledger import checks  # noqa: F401  (registers the system checks)
        from ledger.maintenance import register_maintenance_step
        from ledger.schedules import sweeper_schedule_after_migrate
        from ledger.selectors import ledger_health
        from ledger.sweeper import ledger_prune, ledger_sweep

        register_maintenance_step("runs", ledger_sweep)
        register_maintenance_step("runsPruned", lambda *, now: {"deleted": ledger_prune(now=now)})
        register_maintenance_step("runHealth", ledger_health)
        # Self-healing needs no deploy step: every migrate leaves the sweeper scheduled.
        post_migrate.connect(sweeper_schedule_after_migrate, sender=self,
                             dispatch_uid="ledger_sweeper_schedule")
