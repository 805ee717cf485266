from django.apps import AppConfig


class LedgerConfig(AppConfig):
    name = "ledger"
    verbose_name = "Run ledger"

    def ready(self) -> None:
        from ledger import checks  # noqa: F401  (registers the system checks)
        from ledger.maintenance import register_maintenance_step
        from ledger.selectors import ledger_health
        from ledger.sweeper import ledger_prune, ledger_sweep

        register_maintenance_step("runs", ledger_sweep)
        register_maintenance_step("runsPruned", lambda *, now: {"deleted": ledger_prune(now=now)})
        register_maintenance_step("runHealth", ledger_health)
