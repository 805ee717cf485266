"""Runner bench (issue 3): our ledger runner beside bare Django-Q tasks, on a real qcluster.

    .venv/bin/python bench/bench_runner.py            # both brokers, 15-20 minutes on a loaded machine

For each broker (ORM on PostgreSQL, then Redis db 5), on a fresh ``dispatch_bench_runner``
database, with ``manage.py qcluster`` (2 workers, cluster ``bench-runner``) as a subprocess:

- pickup latency, enqueue to function start, on an idle cluster: one task at a time, alternating
  a bare no-op (``bench.benchapp.tasks.bare_noop``) and a ledger run of the no-op function
  ``bench-noop`` (a FunctionRun created and sent as the dispatch does, executed by
  ``ledger.tasks.execute_run``); the enqueue time is taken just before the broker push;
- drain throughput: 2,000 tasks of one kind queued with the cluster stopped, then the cluster
  started; tasks/s from the first function start to the last; alternating kinds round by round;
- idle load: a cluster with nothing to do for ``--idle-seconds`` (after a settle period), bare
  (no schedules) and ours (the ledger sweeper scheduled every minute, as ``sync_cron_schedules``
  will do): committed transactions of the bench database (``pg_stat_database.xact_commit``)
  and CPU time of the cluster's processes (/proc). The window is long enough to include one
  pass of Django-Q's scheduler (every ~30 s), so ours includes one sweep. Then the same with
  one task sleeping through the window (bare sleep vs a ledger run, whose heartbeat beats every
  LEDGER_HEARTBEAT_SECONDS).

With ``--floor``, a third kind: a bare task that claims and finishes one row with two
compare-and-set UPDATEs (``bench.benchapp.tasks.floor_noop``), the least any durable ledger
must do, to show how far the targets are reachable at all.

Targets: our pickup p50 and p99 <= 1.3 x bare; our drain >= 0.8 x bare; idle: no measurable
extra load (commits and CPU within 10 % of bare, plus a small absolute allowance for one sweep).
"""

import argparse
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from statistics import mean

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

DB_NAME = "dispatch_bench_runner"
CLUSTER = "bench-runner"
KINDS = ("bare", "ours")


def kinds_for(args) -> tuple[str, ...]:
    return (*KINDS, "floor") if args.floor else KINDS


def rotated(kinds: tuple[str, ...], n: int) -> tuple[str, ...]:
    """The kinds in a different order each round, so drift does not favour one kind."""
    n %= len(kinds)
    return kinds[n:] + kinds[:n]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--brokers", default="orm,redis")
    parser.add_argument("--pickup-samples", type=int, default=0,
                        help="samples per kind (default: 100 on the ORM broker, 300 on Redis)")
    parser.add_argument("--drain-tasks", type=int, default=2000)
    parser.add_argument("--drain-rounds", type=int, default=2)
    parser.add_argument("--idle-seconds", type=float, default=40)
    parser.add_argument("--idle-settle", type=float, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--floor", action="store_true",
                        help="also measure the floor kind (bare + claim and finish UPDATEs)")
    parser.add_argument("--phase", choices=["orm", "redis"], help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# --- the phase: one broker, in a process configured for it -------------------------------


class Marks:
    """Reads the lines the task functions append: ``kind id started_at``."""

    def __init__(self, path: Path):
        self.path = path
        self.path.write_text("")
        self.offset = 0
        self.started: dict[tuple[str, str], float] = {}

    def poll(self) -> None:
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            data = handle.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        for line in data[:end].decode().splitlines():
            kind, bench_id, started = line.split()
            self.started.setdefault((kind, bench_id), float(started))

    def wait_for(self, kind: str, bench_id: str, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.poll()
            if (kind, bench_id) in self.started:
                return self.started[(kind, bench_id)]
            time.sleep(0.0005)
        raise TimeoutError(f"{kind} task {bench_id} did not start within {timeout} s")

    def count(self, kind: str, ids: set[str]) -> int:
        self.poll()
        return sum(1 for key in self.started if key[0] == kind and key[1] in ids)


class Phase:
    def __init__(self, args, broker: str, env: dict):
        self.args = args
        self.broker_name = broker
        self.env = env
        import django

        django.setup()
        from django.db import transaction
        from django_q.tasks import async_task

        from ledger.enqueue import broker, broker_is_transactional
        from ledger.services import RunRequest, function_run_create, function_run_send

        self.transaction = transaction
        self.async_task = async_task
        self.broker = broker()
        self.transactional = broker_is_transactional()
        self.RunRequest = RunRequest
        self.function_run_create = function_run_create
        self.function_run_send = function_run_send
        self.marks = Marks(Path(env["BENCH_MARK_FILE"]))
        self.cluster = None
        self.kinds = kinds_for(args)

    # enqueueing --------------------------------------------------------------------------

    def enqueue(self, kind: str, bench_id: str) -> float:
        """Hand one task to the broker the way its path does; returns the enqueue time (taken
        just before the broker push, so both kinds are timed from the same point)."""
        if kind == "bare":
            enqueued_at = time.time()
            self.async_task("bench.benchapp.tasks.bare_noop", bench_id,
                            q_options={"task_name": f"bare:{bench_id}", "broker": self.broker})
            return enqueued_at
        if kind == "floor":
            from django.utils import timezone

            from bench.benchapp.models import BenchRow

            with self.transaction.atomic():
                row = BenchRow.objects.create(key="queued", created_at=timezone.now())
                enqueued_at = time.time()
                self.async_task("bench.benchapp.tasks.floor_noop", row.pk, bench_id,
                                q_options={"task_name": f"floor:{bench_id}",
                                           "broker": self.broker})
            return enqueued_at
        request = self.RunRequest(
            function="bench-noop",
            payload={"source": "command", "dispatchKey": f"bench-noop:{bench_id}",
                     "benchId": bench_id, "params": {}},
            source="command",
            dispatch_key=f"bench-noop:{bench_id}",
            task_id=f"bench:{bench_id}",
        )
        from django.utils import timezone

        if self.transactional:  # as the dispatch does: the run and the enqueue commit together
            with self.transaction.atomic():
                run = self.function_run_create(request=request, now=timezone.now())
                enqueued_at = time.time()
                self.function_run_send(run=run, now=timezone.now())
        else:  # Redis: the push follows the commit
            run = self.function_run_create(request=request, now=timezone.now())
            enqueued_at = time.time()
            self.function_run_send(run=run, now=timezone.now())
        return enqueued_at

    # the cluster -------------------------------------------------------------------------

    def start_cluster(self) -> None:
        self.cluster = common.start([common.PYTHON, "manage.py", "qcluster"], self.env,
                                    f"qcluster-{self.broker_name}.log")

    def stop_cluster(self) -> None:
        common.stop(self.cluster, timeout=30)
        self.cluster = None

    def warm_up(self) -> None:
        for i in range(5):
            for kind in self.kinds:
                bench_id = f"warm-{uuid.uuid4().hex[:8]}"
                self.enqueue(kind, bench_id)
                self.marks.wait_for(kind, bench_id, timeout=60)

    # measurements ------------------------------------------------------------------------

    def pickup(self) -> dict:
        import random

        samples = self.args.pickup_samples or 300
        gap = (0.05, 0.25) if self.broker_name == "orm" else (0.01, 0.03)
        latencies = {kind: [] for kind in self.kinds}
        self.start_cluster()
        try:
            self.warm_up()
            for i in range(samples):
                for kind in rotated(self.kinds, i):
                    # a random gap, so enqueues land at random points of the broker's poll
                    time.sleep(random.uniform(*gap))
                    bench_id = f"p{i}-{uuid.uuid4().hex[:8]}"
                    enqueued_at = self.enqueue(kind, bench_id)
                    started_at = self.marks.wait_for(kind, bench_id, timeout=30)
                    latencies[kind].append((started_at - enqueued_at) * 1000)
        finally:
            self.stop_cluster()
        return {
            kind: {"samples": len(values), "p50_ms": common.percentile(values, 50),
                   "p99_ms": common.percentile(values, 99), "max_ms": max(values)}
            for kind, values in latencies.items()
        }

    def drain_once(self, kind: str) -> dict:
        from ledger.models import FunctionRun, RunStatus

        self.broker.purge_queue()
        tag = uuid.uuid4().hex[:8]
        ids = [f"d{tag}-{i}" for i in range(self.args.drain_tasks)]
        enqueue_started = time.monotonic()
        for bench_id in ids:
            self.enqueue(kind, bench_id)
        enqueue_seconds = time.monotonic() - enqueue_started
        wanted = set(ids)
        self.start_cluster()
        try:
            common.wait_until(lambda: self.marks.count(kind, wanted) == len(ids), timeout=300,
                              interval=0.2, what=f"{len(ids)} {kind} tasks to start")
            if kind == "ours":  # and every run reached its terminal status
                runs = FunctionRun.objects.filter(task_id__in=[f"bench:{i}" for i in ids])
                common.wait_until(
                    lambda: runs.filter(status=RunStatus.SUCCEEDED).count() == len(ids),
                    timeout=60, interval=0.2, what="runs to succeed")
        finally:
            self.stop_cluster()
        starts = sorted(self.marks.started[(kind, i)] for i in ids)
        seconds = starts[-1] - starts[0]
        return {"kind": kind, "tasks": len(ids), "seconds": seconds,
                "tasks_per_s": (len(ids) - 1) / seconds, "enqueue_seconds": enqueue_seconds}

    def drain(self) -> dict:
        rounds = []
        for round_number in range(self.args.drain_rounds):
            for kind in rotated(self.kinds, round_number):
                result = self.drain_once(kind)
                rounds.append(result)
                print(f"  {self.broker_name:5} drain {kind:4} {result['tasks_per_s']:7.1f} "
                      f"tasks/s ({result['tasks']} in {result['seconds']:.2f} s)", flush=True)
        return {
            kind: {"tasks_per_s": mean(r["tasks_per_s"] for r in rounds if r["kind"] == kind),
                   "rounds": [r for r in rounds if r["kind"] == kind]}
            for kind in self.kinds
        }

    def enqueue_sleep(self, kind: str, seconds: float) -> None:
        from django.utils import timezone

        if kind == "bare":
            self.async_task("bench.benchapp.tasks.bare_sleep", seconds,
                            q_options={"task_name": "bare-sleep", "broker": self.broker})
            return
        key = f"bench-sleep:{uuid.uuid4().hex}"
        request = self.RunRequest(function="bench-sleep",
                                  payload={"dispatchKey": key, "seconds": seconds, "params": {}},
                                  source="command", dispatch_key=key, task_id=key[:100])
        with self.transaction.atomic():
            run = self.function_run_create(request=request, now=timezone.now())
            self.function_run_send(run=run, now=timezone.now())

    def idle_once(self, kind: str, *, sleeping: bool = False) -> dict:
        from django.utils import timezone
        from django_q.models import Schedule

        Schedule.objects.all().delete()
        if kind == "ours":
            Schedule.objects.create(name="bench-ledger-sweep", func="ledger.tasks.sweep",
                                    schedule_type=Schedule.MINUTES, minutes=1,
                                    next_run=timezone.now(), repeats=-1)
        from django.db import connection

        if sleeping:
            self.enqueue_sleep(kind, self.args.idle_settle + self.args.idle_seconds + 1)
        connection.close()  # our own connection must not count in the window
        self.start_cluster()
        try:
            time.sleep(self.args.idle_settle)
            commits_before = common.xact_commit(DB_NAME)
            cpu_before = common.cpu_seconds(self.cluster.pid)
            started = time.monotonic()
            time.sleep(self.args.idle_seconds)
            seconds = time.monotonic() - started
            commits = common.xact_commit(DB_NAME) - commits_before
            cpu = common.cpu_seconds(self.cluster.pid) - cpu_before
        finally:
            self.stop_cluster()
        sweeps = 0
        if kind == "ours":
            schedule = Schedule.objects.get(name="bench-ledger-sweep")
            sweeps = 1 if schedule.next_run > timezone.now() else 0
        return {"seconds": seconds, "commits": commits, "commits_per_s": commits / seconds,
                "cpu_s": cpu, "cpu_pct": cpu / seconds * 100, "sweeps_scheduled": sweeps}

    def idle(self) -> dict:
        results = {}
        for sleeping in (False, True):
            for kind in KINDS:
                name = f"{kind}-sleeping" if sleeping else kind
                results[name] = r = self.idle_once(kind, sleeping=sleeping)
                print(f"  {self.broker_name:5} idle  {name:13} {r['commits_per_s']:6.2f} "
                      f"commits/s  cpu {r['cpu_pct']:.2f} %  sweeps {r['sweeps_scheduled']}",
                      flush=True)
        return results

    def run(self) -> dict:
        try:
            pickup = self.pickup()
            for kind, row in pickup.items():
                print(f"  {self.broker_name:5} pickup {kind:4} p50 {row['p50_ms']:7.2f} ms  "
                      f"p99 {row['p99_ms']:7.2f} ms  ({row['samples']} samples)", flush=True)
            drain = self.drain()
            idle = self.idle()
        finally:
            self.stop_cluster()
        return {"pickup": pickup, "drain": drain, "idle": idle}


# --- the driver ----------------------------------------------------------------------------


def run_phase(args, broker: str) -> dict:
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    env = common.bench_env(db_name=DB_NAME, broker=broker, cluster_name=CLUSTER,
                           Q_WORKERS=args.workers,
                           BENCH_MARK_FILE=common.RESULTS / f"marks-{broker}.txt",
                           LOG_LEVEL="WARNING")
    common.recreate_database(DB_NAME)
    common.redis_flush()
    try:
        common.manage(env, "migrate", "--no-input", "-v", "0")
        argv = [common.PYTHON, str(Path(__file__).resolve()), "--phase", broker,
                "--pickup-samples", str(args.pickup_samples),
                "--drain-tasks", str(args.drain_tasks), "--drain-rounds", str(args.drain_rounds),
                "--idle-seconds", str(args.idle_seconds), "--idle-settle", str(args.idle_settle),
                "--workers", str(args.workers)] + (["--floor"] if args.floor else [])
        process = subprocess.Popen(argv, cwd=common.ROOT, env=env, stdout=subprocess.PIPE,
                                   text=True)
        result = None
        try:
            for line in process.stdout:
                if line.startswith("BENCH_JSON "):
                    result = json.loads(line.removeprefix("BENCH_JSON "))
                else:
                    print(line, end="", flush=True)
            process.wait(timeout=1800)
        finally:
            common.stop(process)
        if process.returncode != 0 or result is None:
            raise RuntimeError(f"the {broker} phase failed (exit {process.returncode})")
        return result
    finally:
        common.redis_flush()
        common.drop_database(DB_NAME)


def table(results: dict) -> tuple[str, bool]:
    all_pass = True
    lines = [
        "| broker | measure | bare | ours | ours / bare | target | floor | ours / floor |",
        "| --- | --- | ---: | ---: | ---: | --- | ---: | ---: |",
    ]

    def row(broker, label, bare, ours, ratio_text, target, floor=None, fmt="{:.1f}"):
        floor_text = fmt.format(floor) if floor is not None else "-"
        over_floor = _ratio(ours, floor) if floor else "-"
        lines.append(f"| {broker} | {label} | {fmt.format(bare)} | {fmt.format(ours)} | "
                     f"{ratio_text} | {target} | {floor_text} | {over_floor} |")

    for broker, result in results.items():
        pickup, drain, idle = result["pickup"], result["drain"], result["idle"]
        for stat in ("p50_ms", "p99_ms"):
            bare, ours = pickup["bare"][stat], pickup["ours"][stat]
            ok = ours <= 1.3 * bare
            all_pass &= ok
            row(broker, f"pickup {stat.split('_')[0]} (ms)", bare, ours, _ratio(ours, bare),
                f"<= 1.3x {common.verdict(ok)}", pickup.get("floor", {}).get(stat))
        bare, ours = drain["bare"]["tasks_per_s"], drain["ours"]["tasks_per_s"]
        ok = ours >= 0.8 * bare
        all_pass &= ok
        row(broker, "drain (tasks/s)", bare, ours, _ratio(ours, bare),
            f">= 0.8x {common.verdict(ok)}", drain.get("floor", {}).get("tasks_per_s"),
            fmt="{:.0f}")
        # Idle: "no measurable load" = within 10 % of bare plus room for one sweep (10 commits)
        # and 0.1 s of CPU, which is noise on this machine.
        bare, ours = idle["bare"], idle["ours"]
        ok = ours["commits"] <= bare["commits"] * 1.1 + 10
        all_pass &= ok
        row(broker, "idle: commits/s", bare["commits_per_s"], ours["commits_per_s"],
            _ratio(ours["commits"], bare["commits"]),
            f"<= 1.1x + 10 commits {common.verdict(ok)}", fmt="{:.2f}")
        ok = ours["cpu_s"] <= bare["cpu_s"] * 1.1 + 0.1
        all_pass &= ok
        row(broker, "idle: CPU % of a core", bare["cpu_pct"], ours["cpu_pct"],
            _ratio(ours["cpu_s"], bare["cpu_s"]), f"<= 1.1x + 0.1 s {common.verdict(ok)}",
            fmt="{:.2f}")
        # Not idle, for information: one running run's heartbeat (one UPDATE per
        # LEDGER_HEARTBEAT_SECONDS) beside a bare sleeping task.
        bare, ours = idle["bare-sleeping"], idle["ours-sleeping"]
        row(broker, "one task sleeping: commits/s", bare["commits_per_s"], ours["commits_per_s"],
            _ratio(ours["commits"], bare["commits"]), "info (heartbeats)", fmt="{:.2f}")
        row(broker, "one task sleeping: CPU % of a core", bare["cpu_pct"], ours["cpu_pct"],
            _ratio(ours["cpu_s"], bare["cpu_s"]), "info", fmt="{:.2f}")
    return "\n".join(lines), all_pass


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "-"


def main() -> int:
    args = parse_args()
    if args.phase:
        result = Phase(args, args.phase, dict(os.environ)).run()
        print("BENCH_JSON " + json.dumps(result), flush=True)
        return 0
    machine = common.machine()
    print(f"runner bench on {machine['nproc']} x {machine['cpu']}, {machine['date']}; "
          f"qcluster {args.workers} workers", flush=True)
    results = {}
    for broker in args.brokers.split(","):
        results[broker.strip()] = run_phase(args, broker.strip())
    text, all_pass = table(results)
    print()
    print(text)
    path = common.save_results("runner", {"machine": machine, "args": vars(args),
                                          "results": results, "table": text})
    print(f"\n{'all targets PASS' if all_pass else 'some targets FAIL'}; details in {path}")
    return 0 if all_pass else 1


if __name__ == "__main__":
    sys.exit(main())
