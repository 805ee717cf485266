"""The outreach crons' work on PostgreSQL (issue 19): response-timing over 10,000 and 100,000
messages, followups over 1,000 and 10,000 due instances. Rows per second, and the cost growing
no faster than linearly: 10 x the data in at most 12 x the time.

    .venv/bin/python bench/bench_crons.py            # about 5-8 minutes on 2 shared cores
    .venv/bin/python bench/bench_crons.py --small    # 1/10 of the data, a smoke run

One process, the services called directly (what a worker's run of ``cron-response-timing`` /
``cron-followups`` does, without the ledger's few statements around it), on a fresh
``dispatch_bench_crons_a`` database. Per size, the data is loaded, then the cron runs once over it
(the work: every event / task created) and once more (the idempotent pass that finds nothing
to do); both are timed, with the statements counted. Each size is measured ``--rounds`` times
on freshly loaded data, the two sizes alternating round by round, and the median taken.

Data: leads with ten messages each, a minute apart (inbound, a setter answer, a campaign email,
inbound, an AI answer, inbound twice, a setter answer, inbound, a campaign email), so four of
every ten messages get an event; a lead starts every minute from 80 days ago, so about ten
conversations overlap at any time and a batch looks the same at both sizes (with a lead's
messages an hour apart, 540 conversations overlapped mid-data and fewer at its two ends, which
are a large part of the small data only: its batches were cheaper, its growth overstated). For
followups, one active instance per lead due now, of a three-step sequence (a sixth of the leads
replied since our last email: they pause).
"""

import argparse
import logging
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

DB_NAME = "dispatch_bench_crons_a"
PATTERN = [("inbound", "lead"), ("outbound", "setter"), ("outbound", "campaign"),
           ("inbound", "lead"), ("outbound", "ai"), ("inbound", "lead"), ("inbound", "lead"),
           ("outbound", "setter"), ("inbound", "lead"), ("outbound", "campaign")]
GROWTH_LIMIT = 12.0


def setup(db_name: str) -> None:
    common.recreate_database(db_name)
    os.environ.update(DATABASE_URL=f"{common.PG_URL}/{db_name}",
                      DJANGO_SETTINGS_MODULE="dispatch_project.settings",
                      DJANGO_SECRET_KEY="bench-only-secret-key-not-for-production-0123456789",
                      CRON_SECRET=common.CRON_SECRET, Q_CLUSTER_NAME="bench-crons")
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--no-input", verbosity=0)
    logging.getLogger("jobs").setLevel(logging.WARNING)  # one line per run is noise here


class QueryCounter:
    def __init__(self):
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


def timed(call) -> tuple[float, int, dict]:
    from django.db import connection

    counter = QueryCounter()
    with connection.execute_wrapper(counter):
        started = time.perf_counter()
        result = call()
        seconds = time.perf_counter() - started
    return seconds, counter.count, result


def reset() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE jobs_client RESTART IDENTITY CASCADE")


def load_messages(messages: int, now) -> None:
    from jobs.models import Client, Lead, Message

    reset()
    client = Client.objects.create(name="Bench")
    leads = Lead.objects.bulk_create(
        [Lead(client=client, email=f"lead{n}@example.com") for n in range(messages // 10)],
        batch_size=5000)
    rows = []
    for number, lead in enumerate(leads):
        start = now - timedelta(days=80) + timedelta(seconds=number * 60)
        for step, (direction, source) in enumerate(PATTERN):
            rows.append(Message(lead=lead, direction=direction, source=source,
                                sent_at=start + timedelta(minutes=step)))
    Message.objects.bulk_create(rows, batch_size=5000)
    _analyze()


def load_instances(instances: int, now) -> None:
    from jobs.models import Client, FollowUpInstance, FollowUpSequence, FollowUpStep, Lead

    reset()
    client = Client.objects.create(name="Bench")
    sequence = FollowUpSequence.objects.create(client=client, name="Bench")
    for order in range(3):
        FollowUpStep.objects.create(sequence=sequence, order=order, delay_hours=24,
                                    body_template="Hi {first_name}, step " + str(order))
    leads = Lead.objects.bulk_create([
        Lead(client=client, email=f"lead{n}@example.com", first_name=f"Lead {n}",
             last_outbound_at=now - timedelta(days=2),
             last_inbound_at=now - timedelta(days=1) if n % 6 == 0 else None)
        for n in range(instances)], batch_size=5000)
    FollowUpInstance.objects.bulk_create([
        FollowUpInstance(lead=lead, sequence=sequence, current_step=n % 3,
                         next_step_due_at=now - timedelta(minutes=n % 60))
        for n, lead in enumerate(leads)], batch_size=5000)
    _analyze()


def _analyze() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def run_once(kind: str, size: int) -> tuple[dict, dict]:
    """Load ``size`` rows, run the cron over them (the work), then again (the idle pass)."""
    from django.utils import timezone

    from jobs.followups import followups_run
    from jobs.response_timing import response_timing_record

    now = timezone.now()
    if kind == "response-timing":
        load_messages(size, now)
        call = lambda: response_timing_record(now=now, budget_seconds=3600)  # noqa: E731
        done_key = "inserted"
    else:
        load_instances(size, now)
        call = lambda: followups_run(now=now, budget_seconds=3600)  # noqa: E731
        done_key = "tasksCreated"
    seconds, queries, result = timed(call)
    assert result["exhausted"], result
    work = {"seconds": seconds, "queries": queries, "done": result[done_key], "result": result}
    seconds, queries, again = timed(call)
    assert again[done_key] == 0, again
    return work, {"seconds": seconds, "queries": queries}


def measure(kind: str, sizes: tuple[int, int], rounds: int) -> list[dict]:
    """Both sizes, alternating round by round (the machine drifts: each size sees the same
    drift), the median of each."""
    runs = {size: ([], []) for size in sizes}
    for number in range(rounds):
        for size in sizes if number % 2 == 0 else tuple(reversed(sizes)):
            work, idle = run_once(kind, size)
            runs[size][0].append(work)
            runs[size][1].append(idle)
    rows = []
    for size in sizes:
        work, idle = runs[size]
        median = statistics.median(run["seconds"] for run in work)
        idle_median = statistics.median(run["seconds"] for run in idle)
        rows.append({"kind": kind, "rows": size, "seconds": median, "rows_per_s": size / median,
                     "queries": work[0]["queries"], "done": work[0]["done"],
                     "idle_seconds": idle_median, "idle_rows_per_s": size / idle_median,
                     "idle_queries": idle[0]["queries"], "rounds": work, "idle_rounds": idle,
                     "result": work[0]["result"]})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", action="store_true", help="1/10 of the data (smoke run)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--db", default=DB_NAME)
    args = parser.parse_args()
    scale = 10 if args.small else 1
    info = common.machine()
    setup(args.db)
    try:
        cases = [("response-timing", 10_000 // scale, 100_000 // scale),
                 ("followups", 1_000 // scale, 10_000 // scale)]
        results, failed = [], False
        print(f"{info['date']}  {info['nproc']} x {info['cpu']}  load {info['loadavg_at_start']}")
        print(f"{'cron':16} {'rows':>8} {'s':>8} {'rows/s':>9} {'SQL':>6} {'done':>7} "
              f"{'idle s':>8} {'idle rows/s':>11}")
        for kind, small, large in cases:
            pair = measure(kind, (small, large), args.rounds)
            for row in pair:
                print(f"{kind:16} {row['rows']:>8,} {row['seconds']:>8.2f} "
                      f"{row['rows_per_s']:>9,.0f} {row['queries']:>6} {row['done']:>7,} "
                      f"{row['idle_seconds']:>8.2f} {row['idle_rows_per_s']:>11,.0f}")
            growth = pair[1]["seconds"] / pair[0]["seconds"]
            idle_growth = pair[1]["idle_seconds"] / pair[0]["idle_seconds"]
            verdict = "PASS" if growth <= GROWTH_LIMIT and idle_growth <= GROWTH_LIMIT else "FAIL"
            failed |= verdict == "FAIL"
            print(f"{kind:16} 10 x the rows: {growth:.2f} x the time "
                  f"(idle pass {idle_growth:.2f} x); target <= {GROWTH_LIMIT:g} x: {verdict}")
            results.append({"kind": kind, "growth": growth, "idle_growth": idle_growth,
                            "verdict": verdict, "sizes": pair})
        path = common.save_results("crons", {"machine": info, "cases": results})
        print(f"details: {path}")
        return 1 if failed else 0
    finally:
        from django.db import connection

        connection.close()
        common.drop_database(args.db)


if __name__ == "__main__":
    sys.exit(main())
