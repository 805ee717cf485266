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
    register_cron(
        CronDefinition(
            name="response-timing",
            route="response-timing",
            functions=(CronFunction("cron-response-timing", "cron-response-timing"),),
            window_seconds=300,
            schedule="*/5 * * * *",
            description="Record how fast setters, the AI or the next campaign email answered "
                        "each inbound message of the last 90 days.",
        )
    )
    register_cron(
        CronDefinition(
            name="followups",
            route="followups",
            functions=(CronFunction("cron-followups", "cron-followups"),),
            window_seconds=60,
            schedule="* * * * *",
            description="Advance due follow-up sequences: produce each due step's task, pause "
                        "on a reply, resume after quiet days, complete on a booked meeting.",
        )
    )
