"""Webhook ingest bench: the email webhook under gunicorn on PostgreSQL beside a one-INSERT
Django view, and (for information) one worker's drain beside a bare claim-and-mark loop.

    .venv/bin/python bench/bench_webhooks.py            # ~4 minutes

On a fresh ``dispatch_bench`` database:

1. ingest: ``wrk`` POSTs distinct EMAIL_SENT bodies (a new scheduled_email.id per request, so
   every delivery is a new event; INBOXXIA_EMAIL_SENT_ASYNC on) at /api/webhooks/email and at
   /bench/webhook-baseline (token check, one ORM INSERT of the body, 202), rounds alternating.
   Neither sends prepared statements. No cluster runs: the first delivery's doorbell enqueues
   one drain task on the ORM broker and every later one finds the flag pending (one read).
2. drain (information, no target): ``webhook_events_drain`` over N pending EMAIL_SENT events
   beside a bare claim-and-mark loop (bench/webhook_drain.py, one process = one worker).

Targets: ingest >= 0.85 x baseline req/s and p99 <= 1.3 x baseline p99, no failed request.
Received-to-processed latency has its own bench: bench/bench_webhook_latency.py.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path
from statistics import mean

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

DB_NAME = common.DB_NAME
TOKEN = "bench-webhook-token-0123456789abcdef"
LUA = common.ROOT / "bench" / "wrk_webhooks.lua"
FIXTURE = common.ROOT / "tests" / "webhooks" / "fixtures" / "email_sent__basic.json"
ROUTES = {"baseline": "/bench/webhook-baseline", "ingest": "/api/webhooks/email"}
COUNT_SQL = {"baseline": "SELECT count(*) FROM benchapp_benchwebhookrow",
             "ingest": "SELECT count(*) FROM webhooks_webhookevent"}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", default="ingest,drain", help="ingest, drain or both")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--warmup", type=int, default=3)
    # p99 of a 10 s run rests on ~120 requests: one burst of a neighbour's load moves it by a
    # third (seen: one round at 11.5 ms among 6-7 ms ones), so five rounds.
    parser.add_argument("--rounds", type=int, default=5, help="ingest rounds")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=2, help="gunicorn threads per worker")
    parser.add_argument("--drain-events", type=int, default=1000)
    parser.add_argument("--drain-rounds", type=int, default=2)
    parser.add_argument("--port", type=int, default=8250, help="within 8200-8299")
    parser.add_argument("--keep-db", action="store_true")
    return parser.parse_args()


# --- environment -------------------------------------------------------------------------


def bench_env() -> dict:
    return common.bench_env(broker="orm", WEBHOOK_TOKEN=TOKEN, INBOXXIA_EMAIL_SENT_ASYNC="true")


def sql(query: str, params=None, *, fetch: bool = True):
    import psycopg

    with psycopg.connect(f"{common.PG_URL}/{DB_NAME}", autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if fetch and cursor.description else None


def reset_queue() -> None:
    """No events, no doorbell, no queued Django-Q task: each case starts from nothing."""
    sql("TRUNCATE webhooks_webhookevent, webhooks_draindoorbell, django_q_ormq", fetch=False)


# --- ingest ------------------------------------------------------------------------------


def template_path() -> Path:
    text = FIXTURE.read_text()
    assert text.count('"id": 9001,') == 1
    path = common.RESULTS / "webhook_template.json"
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(text.replace('"id": 9001,', '"id": __SCHEDULED_ID__,'))
    return path


class Ingest:
    def __init__(self, args, cpu: common.CpuMeter):
        self.args, self.cpu = args, cpu
        self.base = f"http://127.0.0.1:{args.port}"
        self.template = template_path()
        self.sequence = 10  # id prefixes 10..99: 12-digit ids, never the drain's

    def wrk(self, case: str, seconds: int) -> dict:
        self.sequence += 1
        assert self.sequence < 100, "too many wrk runs for the id scheme"
        before = common.settled(lambda: sql(COUNT_SQL[case])[0][0])
        cpu_before = self.cpu.read()
        result = common.wrk(self.base, script=LUA, seconds=seconds,
                            script_args=[ROUTES[case], TOKEN, str(self.template),
                                         str(self.sequence)],
                            connections=self.args.connections, threads=self.args.wrk_threads)
        cpu_after = self.cpu.read()
        result.update(common.CpuMeter.per_request(cpu_before, cpu_after, result["requests"]))
        stored = common.settled(lambda: sql(COUNT_SQL[case])[0][0]) - before
        result["stored"] = stored
        # Every answered request stored exactly one new row (in-flight ones at the end may too).
        assert result["requests"] <= stored <= result["requests"] + self.args.connections, \
            (case, result["requests"], stored)
        return result

    def rounds(self, label: str, rounds: int) -> dict:
        for case in ROUTES:
            self.wrk(case, self.args.warmup)
        samples: dict[str, list[dict]] = {case: [] for case in ROUTES}
        order = list(ROUTES)
        for number in range(rounds):
            for case in order if number % 2 == 0 else order[::-1]:
                result = self.wrk(case, self.args.duration)
                samples[case].append(result)
                print(f"  {label:6} round {number + 1} {case:8} {result['rps']:8.1f} req/s  "
                      f"p50 {result['p50_us'] / 1000:6.2f} ms  p99 {result['p99_us'] / 1000:6.2f}"
                      f" ms  errors {result['errors']}  CPU/request: web {result['web_cpu_ms']:.2f}"
                      f" ms, database backends {result['db_cpu_ms']:.2f} ms", flush=True)
        return {case: summarise(results) for case, results in samples.items()}


def summarise(results: list[dict]) -> dict:
    return {"rps": mean(r["rps"] for r in results),
            "p50_ms": mean(r["p50_us"] for r in results) / 1000,
            "p99_ms": mean(r["p99_us"] for r in results) / 1000,
            "errors": sum(r["errors"] for r in results),
            "web_cpu_ms": mean(r["web_cpu_ms"] for r in results),
            "db_cpu_ms": mean(r["db_cpu_ms"] for r in results),
            "requests": sum(r["requests"] for r in results), "rounds": results}


# --- drain -------------------------------------------------------------------------------


def drain(args) -> dict:
    reset_queue()
    command = [common.PYTHON, str(common.ROOT / "bench" / "webhook_drain.py"),
               "--events", str(args.drain_events), "--rounds", str(args.drain_rounds)]
    output = subprocess.run(command, cwd=common.ROOT, env=bench_env(), capture_output=False,
                            stdout=subprocess.PIPE, text=True, timeout=600, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("BENCH_JSON "))
    rounds = json.loads(line.removeprefix("BENCH_JSON "))["rounds"]
    summary = {}
    for kind in ("ours", "bare"):
        mine = [r for r in rounds if r["kind"] == kind]
        summary[kind] = {"events_per_s": mean(r["events_per_s"] for r in mine),
                         "queries_per_event": mean(r["queries_per_event"] for r in mine),
                         "sql_share": mean(r["sql_share"] for r in mine),
                         "ms_per_event": mean(1000 * r["seconds"] / r["events"] for r in mine),
                         "rounds": mine}
    return summary


# --- the table ---------------------------------------------------------------------------


def table(results: dict) -> tuple[str, bool]:
    lines = ["| case | figure | ours | baseline / reference | ratio | target |",
             "| --- | --- | ---: | ---: | ---: | --- |"]
    all_pass = True

    def row(case, figure, ours, ref, ratio, target, ok=None):
        nonlocal all_pass
        verdict = "" if ok is None else f" {common.verdict(ok)}"
        all_pass &= ok is not False
        ratio_text = "-" if ratio is None else f"{ratio:.2f}"
        lines.append(f"| {case} | {figure} | {ours:.2f} | {ref:.2f} | {ratio_text} | "
                     f"{target}{verdict} |")

    ingest = results.get("ingest")
    if ingest:
        ours, base = ingest["ingest"], ingest["baseline"]
        errors_ok = ours["errors"] == 0 and base["errors"] == 0
        by_round = sorted(o["rps"] / b["rps"] for o, b in zip(ours["rounds"], base["rounds"]))
        row("ingest", "req/s", ours["rps"], base["rps"], ours["rps"] / base["rps"],
            f">= 0.85 x baseline (rounds {by_round[0]:.2f}-{by_round[-1]:.2f})",
            ours["rps"] / base["rps"] >= 0.85 and errors_ok)
        row("ingest", "p50 ms", ours["p50_ms"], base["p50_ms"],
            ours["p50_ms"] / base["p50_ms"], "info")
        row("ingest", "p99 ms", ours["p99_ms"], base["p99_ms"],
            ours["p99_ms"] / base["p99_ms"], "<= 1.3 x baseline",
            ours["p99_ms"] / base["p99_ms"] <= 1.3)
        for part, key in (("web server", "web_cpu_ms"), ("database backends", "db_cpu_ms")):
            row("ingest", f"CPU ms per request, {part}", ours[key], base[key],
                ours[key] / base[key] if base[key] else None, "info")
    drained = results.get("drain")
    if drained:
        ours, bare = drained["ours"], drained["bare"]
        row("drain (1 worker)", "events/s", ours["events_per_s"], bare["events_per_s"],
            ours["events_per_s"] / bare["events_per_s"], "info (bare claim-and-mark)")
        row("drain (1 worker)", "SQL statements/event", ours["queries_per_event"],
            bare["queries_per_event"], None, "info")
        row("drain (1 worker)", "share of wall time in SQL", ours["sql_share"],
            bare["sql_share"], None, "info")
    return "\n".join(lines), all_pass


def main() -> int:
    args = parse_args()
    common.exit_on_sigterm()
    if not 8200 <= args.port <= 8299:
        raise SystemExit("--port must be within 8200-8299")
    if not common.have("wrk"):
        raise SystemExit("wrk is missing: apt-get install -y wrk")
    cases = {c.strip() for c in args.cases.split(",")}
    machine = common.machine()
    print(f"webhook bench on {machine['nproc']} x {machine['cpu']}, {machine['date']}; gunicorn "
          f"gthread {args.workers}x{args.threads}, wrk -t{args.wrk_threads} -c{args.connections}"
          f", cases {','.join(sorted(cases))}", flush=True)
    common.recreate_database(DB_NAME)
    results: dict = {}
    server = None
    try:
        common.manage(bench_env(), "migrate", "--no-input", "-v", "0")
        if "ingest" in cases:
            server = common.start_gunicorn(
                bench_env(), port=args.port, log_name="gunicorn-webhooks.log",
                probe=ROUTES["ingest"], probe_status=200, workers=args.workers,
                threads=args.threads)
            results["ingest"] = Ingest(args, common.CpuMeter(server.pid)).rounds(
                "ingest", args.rounds)
            common.stop(server)
            server = None
        if "drain" in cases:
            results["drain"] = drain(args)
    finally:
        common.stop(server)
        if not args.keep_db:
            common.drop_database(DB_NAME)
    text, all_pass = table(results)
    print()
    print(text)
    path = common.save_results("webhooks", {"machine": machine, "args": vars(args),
                                            "results": results, "table": text})
    print(f"\n{'all targets PASS' if all_pass else 'some targets FAIL'}; details in {path}")
    return 0 if all_pass else 1


if __name__ == "__main__":
    sys.exit(main())
