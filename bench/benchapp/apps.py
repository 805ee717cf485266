from django.apps import AppConfig


class BenchConfig(AppConfig):
    """Registers what the benches need, without touching app code:

    - ``bench-jobs``: the same two functions as ``background-jobs``, plus a ``n`` param so every
      request can open a new window. Overlap ``allow-all``: with no cluster draining during the
      dispatch bench, ``skip`` would turn every run after the first into ``skipped`` and enqueue
      nothing, which is not what a new window costs in production.
    - ``bench-noop``: a ledger function that records when it started (runner bench). Its
      concurrency key is the run's dispatch key, so runs never wait for each other's slot.
    - ``bench-sleep``: a ledger function that sleeps, so the idle bench sees heartbeats.
    """

    name = "bench.benchapp"
    label = "benchapp"
    verbose_name = "Bench"

    def ready(self) -> None:
        from bench.benchapp import tasks
        from cron.registry import CronDefinition, CronFunction, register_cron
        from ledger.registry import register_function
        from ledger.services import Overlap

        register_cron(
            CronDefinition(
                name="bench-jobs",
                route="bench-jobs",
                functions=(
                    CronFunction("process-background-jobs", "bg-process"),
                    CronFunction("background-maintenance", "bg-maint"),
                ),
                window_seconds=60,
                schedule="* * * * *",
                allowed_params=frozenset({"n"}),
                use_queue_default=True,
                overlap=Overlap.ALLOW_ALL,
                description="Bench only: background-jobs' functions with a distinct-window param.",
            )
        )
        register_function(
            "bench-noop", tasks.ledger_noop, timeout_seconds=60, retries=0,
            concurrency_key=lambda payload: payload.get("dispatchKey", ""),
        )
        register_function("bench-sleep", tasks.ledger_sleep, timeout_seconds=300, retries=0)
