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
            name="appointment-reconcile",
            route="appointment-reconcile",
            functions=(CronFunction("cron-appointment-reconcile",
                                    "cron-appointment-reconcile"),),
            window_seconds=60,
            schedule="* * * * *",
            allowed_params=frozenset({"workspaceLimit", "leadsPerWorkspace", "staleDays",
                                      "clientId", "dryRun"}),
            description="Check hot, then warm leads' appointments with the booking provider; "
                        "a booking completes follow-ups, a cancellation creates a task.",
            params_doc={
                "workspaceLimit": "clients checked in this run",
                "leadsPerWorkspace": "leads checked per client",
                "staleDays": "a warm lead is checked again after this many days",
                "clientId": "check this client only",
                "dryRun": "true: read the provider, write nothing",
            },
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
    register_cron(
        CronDefinition(
            name="availability",
            route="availability",
            functions=(CronFunction("cron-availability", "cron-availability"),),
            window_seconds=60,
            schedule="* * * * *",
            allowed_params=frozenset({"timeBudgetMs", "concurrency"}),
            description="Refresh each client's cache of the next 30 days of 30-minute slots "
                        "from its availability source.",
            params_doc={
                "timeBudgetMs": "stop starting new fetches after this many milliseconds",
                "concurrency": "sources fetched at once",
            },
        )
    )
    register_cron(
        CronDefinition(
            name="emailbison-availability-slot",
            route="emailbison/availability-slot",
            functions=(CronFunction("cron-emailbison-availability-slot",
                                    "cron-emailbison-availability-slot"),),
            window_seconds=60,
            schedule="* * * * *",
            allowed_params=frozenset({"dryRun", "timeBudgetMs"}),
            description="Offer leads due their first email one or two open slots through "
                        "their EmailBison availability_slot custom variable.",
            params_doc={
                "dryRun": "true: compute the offers, write nothing (database or EmailBison)",
                "timeBudgetMs": "stop after this many milliseconds",
            },
        )
    )
