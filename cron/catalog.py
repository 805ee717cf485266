"""The crons this service runs (CONTRACT.md "Crons"). One registration each."""

from cron.registry import CronDefinition, CronFunction, register_cron


def register_catalog() -> None:
    register_cron(
        CronDefinition(
            name="background-jobs",
            route="background-jobs",
            functions=(
                CronFunction("process-background-jobs", "bg-process"),
                CronFunction("background-maintenance", "bg-maint"),
            ),
            window_seconds=60,
            schedule="* * * * *",
            use_queue_default=True,
            setting_prefix="BACKGROUND_JOBS",
            force_inline_switch=True,
            description="Drain background queues (webhook events) and run ledger maintenance.",
        )
    )
