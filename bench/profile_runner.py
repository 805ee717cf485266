"""Where a ledger run's time goes on the worker side: SQL statements of one
``ledger.tasks.execute_run`` and a cProfile of many, beside the bare no-op (analysis aid).

    .venv/bin/python bench/profile_runner.py [--runs 200]
    .venv/bin/python bench/profile_runner.py --prepared [--runs 1500]

``--prepared`` instead compares how the claim and finish reach PostgreSQL, alternated over three
rounds: as the code sends them (prepared by ``ledger.db.hot_cursor``, so generic plans after
five runs, kept a minute at most), not prepared (``DATABASE_PREPARED_STATEMENTS=false``), and
prepared with ``plan_cache_mode = force_custom_plan``; for each, wall time, this process's CPU
and the database backend's CPU per delivery (docs/performance.md, "Runner, 2026-11-24 12:11 UTC"
and "Runner, 2026-11-24 13:57 UTC").

Runs in-process (no cluster) on a fresh dispatch_bench_profile database, with the bench settings.
"""

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

DB_NAME = "dispatch_bench_profile"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--prepared", action="store_true",
                        help="compare sending the claim and finish as now (prepared), not "
                             "prepared, and prepared with custom plans")
    parser.add_argument("--unnamed", action="store_true",
                        help="tasks that do not name the run's function (queued before they did)")
    args = parser.parse_args()
    env = common.bench_env(db_name=DB_NAME, broker="redis", cluster_name="bench-profile",
                           BENCH_MARK_FILE=common.RESULTS / "marks-profile.txt",
                           LOG_LEVEL="WARNING")
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    common.recreate_database(DB_NAME)
    common.manage(env, "migrate", "--no-input", "-v", "0")
    os.environ.update(env)
    import django

    django.setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from bench.benchapp.tasks import bare_noop
    from ledger.services import RunRequest, function_run_create
    from ledger.tasks import execute_run as execute_task

    function = None if args.unnamed else "bench-noop"

    def execute_run(run_id):
        return execute_task(run_id, function)

    def make_run():
        bench_id = uuid.uuid4().hex
        request = RunRequest(function="bench-noop", payload={
            "dispatchKey": f"bench-noop:{bench_id}", "benchId": bench_id, "params": {}},
            source="command", dispatch_key=f"bench-noop:{bench_id}", task_id=f"bench:{bench_id}")
        return function_run_create(request=request, now=timezone.now()).pk

    try:
        if args.prepared:
            compare_statements(connection, execute_run, make_run, args.runs)
            return 0
        for _ in range(10):
            execute_run(make_run())
        run_id = make_run()
        with CaptureQueriesContext(connection) as queries:
            execute_run(run_id)
        print(f"== execute_run: {len(queries)} SQL statements")
        for query in queries.captured_queries:
            print(f"   {query['time']}s  {query['sql'][:140]}")
        ids = [make_run() for _ in range(args.runs)]
        started = time.perf_counter()
        for run_id in ids:
            execute_run(run_id)
        ours = (time.perf_counter() - started) / args.runs * 1000
        started = time.perf_counter()
        for i in range(args.runs):
            bare_noop(str(i))
        bare = (time.perf_counter() - started) / args.runs * 1000
        print(f"\n== wall time per task, in-process, unprofiled: ours {ours:.2f} ms, "
              f"bare {bare:.3f} ms")
        ids = [make_run() for _ in range(args.runs)]
        profile = cProfile.Profile()
        profile.enable()
        for run_id in ids:
            execute_run(run_id)
        profile.disable()
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats(os.environ.get("BENCH_PROFILE_SORT", "cumulative")).print_stats(args.top)
        print("\n== cProfile execute_run (cumulative)")
        print("\n".join(out.getvalue().splitlines()[6:]))
    finally:
        connection.close()
        common.drop_database(DB_NAME)
    return 0


def compare_statements(connection, execute_run, make_run, runs: int) -> None:
    options = dict(connection.settings_dict["OPTIONS"])
    variants = {
        "as sent now (prepared)": ({}, None),
        "not prepared": ({"prepare_threshold": None}, None),
        "prepared, custom plans": ({}, "SET plan_cache_mode = force_custom_plan"),
    }

    def backend_seconds() -> float:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            return common.cpu_seconds(cursor.fetchone()[0])

    results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}
    for _ in range(3):
        for name, (extra, setup) in variants.items():
            connection.close()
            connection.settings_dict["OPTIONS"] = {**options, **extra}
            connection.ensure_connection()
            if setup:
                with connection.cursor() as cursor:
                    cursor.execute(setup)
            for _ in range(20):
                execute_run(make_run())  # past psycopg's and PostgreSQL's thresholds
            ids = [make_run() for _ in range(runs)]
            database, wall, cpu = backend_seconds(), time.perf_counter(), time.process_time()
            for run_id in ids:
                execute_run(run_id)
            results[name].append(((time.perf_counter() - wall) / runs * 1000,
                                  (time.process_time() - cpu) / runs * 1000,
                                  (backend_seconds() - database) / runs * 1000))
    connection.settings_dict["OPTIONS"] = options
    print(f"\n== per delivery, {runs} deliveries x 3 rounds per variant, alternated (ms)")
    for name, rounds in results.items():
        wall, python, database = (", ".join(f"{r[i]:.2f}" for r in rounds) for i in range(3))
        print(f"   {name:24}  wall {wall}   Python {python}   database backend CPU {database}")


if __name__ == "__main__":
    sys.exit(main())
