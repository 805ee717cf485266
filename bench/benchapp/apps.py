from django.apps import AppConfig


class BenchConfig(AppConfig):
    """Registers what the dispatch bench needs, without touching app code: ``bench-jobs``, a
    cron that opens a new window per request (a ``n`` param), enqueuing two functions with the
    controls of background-jobs' two (timeouts, retries) but overlap ``allow-all``.

    Why not ``skip``, as background-jobs has: its check reads the function's queued and running
    runs, and with no cluster draining, a bench run queues thousands of them (a ledger in
    production holds a handful). Each window would then measure that backlog, 8.5 ms of reading
    at 3,724 queued runs and growing, rather than the route. The functions are never executed
    (no cluster runs during the dispatch bench)."""

    name = "bench.benchapp"
    label = "benchapp"
    verbose_name = "Bench"

    def ready(self) -> None:
        from cron.registry import CronDefinition, CronFunction, register_cron
        from jobs import functions
        from ledger.registry import Overlap, register_function

        register_function("bench-process", functions.process_background_jobs,
                          timeout_seconds=120, retries=1, overlap=Overlap.ALLOW_ALL)
        register_function("bench-maintenance", functions.background_maintenance,
                          timeout_seconds=300, retries=1, overlap=Overlap.ALLOW_ALL)
        register_cron(
            CronDefinition(
                name="bench-jobs",
                route="bench-jobs",
                functions=(CronFunction("bench-process", "bg-process"),
                           CronFunction("bench-maintenance", "bg-maint")),
                window_seconds=60,
                schedule="* * * * *",
                allowed_params=frozenset({"n"}),
                use_queue_default=True,
                description="Bench only: two functions and a distinct-window param.",
            )
        )
