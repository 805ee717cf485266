"""Analysis aid for the webhook bench (not a target): the SQL statements of one POST to the
email webhook and of one to the baseline, and a cProfile of N POSTs each (in-process, Django
test client; the doorbell's first ring enqueues one ORM task, later ones find it pending).

    .venv/bin/python bench/profile_webhook_ingest.py [--requests 500]

Uses a fresh ``dispatch_bench`` database (dropped afterwards): not while another bench runs.
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
TOKEN = "bench-token-0123456789"
FIXTURE = common.ROOT / "tests" / "webhooks" / "fixtures" / "email_sent__basic.json"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    env = common.bench_env(broker="orm", WEBHOOK_TOKEN=TOKEN, DATABASE_CONN_MAX_AGE=600)
    common.recreate_database(DB_NAME)
    try:
        common.manage(env, "migrate", "--no-input", "-v", "0")
        os.environ.update(env)
        import django

        django.setup()
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        template = FIXTURE.read_text()
        client = Client(HTTP_HOST="127.0.0.1")
        counter = iter(range(10**9))

        def post(path):
            body = template.replace('"id": 9001,', f'"id": {next(counter) + 10**6},')
            response = client.post(path, data=body, content_type="application/json",
                                   HTTP_X_WEBHOOK_TOKEN=TOKEN)
            assert response.status_code == 202, response.content

        for path in ("/api/webhooks/email", "/bench/webhook-baseline"):
            for _ in range(20):
                post(path)
            with CaptureQueriesContext(connection) as queries:
                post(path)
            print(f"{path}: {len(queries)} statements")
            for query in queries:
                print(f"  {query['time']:>6}s  {query['sql'][:200]}")
        common.time_statements({"baseline": lambda i: post("/bench/webhook-baseline"),
                                "ingest": lambda i: post("/api/webhooks/email")},
                               args.requests, connection)
        for path in ("/api/webhooks/email", "/bench/webhook-baseline"):
            profiler = cProfile.Profile()
            started = time.perf_counter()
            profiler.enable()
            for _ in range(args.requests):
                post(path)
            profiler.disable()
            seconds = time.perf_counter() - started
            print(f"\n{path}: {args.requests} requests in {seconds:.2f} s under cProfile "
                  f"({1000 * seconds / args.requests:.2f} ms/request)")
            pstats.Stats(profiler).sort_stats(
                os.environ.get("BENCH_PROFILE_SORT", "cumulative")
            ).print_stats(int(os.environ.get("BENCH_PROFILE_TOP", "25")))
    finally:
        common.drop_database(DB_NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
