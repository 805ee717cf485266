"""Analysis aid for the webhook bench (not a target): the SQL statements one EMAIL_SENT event
costs in ``webhook_events_drain``, and a cProfile of draining N events in this process.

    .venv/bin/python bench/profile_webhook_drain.py [--events 300]

Uses a fresh ``dispatch_bench`` database (dropped afterwards): not while another bench runs.
BENCH_PROFILE_SORT=tottime sorts by own time.
"""

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

DB_NAME = common.DB_NAME


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300)
    args = parser.parse_args()
    env = common.bench_env(broker="orm", WEBHOOK_TOKEN="bench-token")
    common.recreate_database(DB_NAME)
    try:
        common.manage(env, "migrate", "--no-input", "-v", "0")
        os.environ.update(env)
        import django

        django.setup()
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        from bench.webhook_drain import store_events
        from jobs.models import Client
        from webhooks.processing import webhook_events_drain

        Client.objects.get_or_create(emailbison_workspace_id="42", defaults={"name": "bench"})
        store_events(20, "7770")
        webhook_events_drain(budget_seconds=60)  # warm-up
        store_events(1, "7771")
        with CaptureQueriesContext(connection) as queries:
            webhook_events_drain(budget_seconds=60, batch_size=1)
        print(f"SQL of one drain call over one event ({len(queries)} statements):")
        for query in queries:
            print(f"  {query['time']:>6}s  {query['sql'][:220]}")
        store_events(args.events, "7772")
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        counts = webhook_events_drain(budget_seconds=600)
        profiler.disable()
        seconds = time.perf_counter() - started
        print(f"\n{counts['processed']} events in {seconds:.2f} s under cProfile "
              f"({1000 * seconds / counts['processed']:.1f} ms/event)")
        stats = pstats.Stats(profiler)
        stats.sort_stats(os.environ.get("BENCH_PROFILE_SORT", "cumulative")).print_stats(35)
    finally:
        common.drop_database(DB_NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
