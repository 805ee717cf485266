"""Where a dispatch request's time goes: SQL statements per request and a cProfile of many
requests, for the baseline, a new window, the floor of a new window (``new_floor_view``) and a
duplicate (analysis aid, not a target).

    .venv/bin/python bench/profile_dispatch.py [--broker orm|redis] [--requests 300]

Runs in-process through Django's test client (no HTTP server) on a fresh dispatch_bench_profile
database, with the bench settings.
"""

import argparse
import cProfile
import io
import os
import pstats
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

DB_NAME = "dispatch_bench_profile"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--broker", default="orm", choices=["orm", "redis"])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    env = common.bench_env(db_name=DB_NAME, broker=args.broker, cluster_name="bench-profile")
    common.recreate_database(DB_NAME)
    common.manage(env, "migrate", "--no-input", "-v", "0")
    common.redis_flush()
    os.environ.update(env)
    os.environ["LOG_LEVEL"] = os.environ.get("BENCH_PROFILE_LOG_LEVEL", "INFO")
    import django

    django.setup()
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Bearer {common.CRON_SECRET}", SERVER_NAME="127.0.0.1")
    cases = {
        "baseline": lambda i: client.get(f"/bench/baseline?n=p{i}"),
        "new": lambda i: client.get(f"/api/cron/bench-jobs?n={uuid.uuid4().hex}"),
        "new-floor": lambda i: client.get(f"/bench/new-floor?n={uuid.uuid4().hex}"),
        "duplicate": lambda i: client.get("/api/cron/background-jobs"),
    }
    try:
        client.get("/api/cron/background-jobs")
        for name, call in cases.items():
            for i in range(20):
                call(i)  # warm
            with CaptureQueriesContext(connection) as queries:
                response = call(-1)
            print(f"\n== {name}: HTTP {response.status_code}, {len(queries)} SQL statements")
            for query in queries.captured_queries:
                print(f"   {query['time']}s  {query['sql'][:150]}")
        common.time_statements(cases, args.requests, connection)
        for name, call in cases.items():
            profile = cProfile.Profile()
            profile.enable()
            for i in range(args.requests):
                call(i)
            profile.disable()
            out = io.StringIO()
            stats = pstats.Stats(profile, stream=out).sort_stats(os.environ.get("PROFILE_SORT", "cumulative"))
            stats.print_stats(args.top)
            total = stats.total_tt
            print(f"\n== cProfile {name}: {total / args.requests * 1000:.2f} ms per request "
                  f"(in-process, profiled)")
            print("\n".join(out.getvalue().splitlines()[6:]))
    finally:
        connection.close()
        common.redis_flush()
        common.drop_database(DB_NAME)
    return 0


if __name__ == "__main__":
    sys.exit(main())
