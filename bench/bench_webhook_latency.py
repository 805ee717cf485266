"""Webhook latency bench: received -> processed at a steady 50 events/s, through a real gunicorn
and a real ``manage.py qcluster``, on the ORM broker and on Redis.

    .venv/bin/python bench/bench_webhook_latency.py     # both brokers, ~2 minutes

For each broker, on a fresh ``dispatch_bench`` database (Redis db 8, flushed before and after):
gunicorn (gthread 2 x 2) and a qcluster (2 workers); 20 warm-up events, then ``--rate`` events/s
for ``--seconds`` seconds, POSTed on a fixed schedule by 8 keep-alive threads (an open-loop
sender: an event is sent at its time whether or not the previous one was answered; how late the
sender ran is reported). Every event is a distinct EMAIL_SENT for the real handler (a client for
its workspace exists; 300 distinct leads). Latency is each event's ``processed_at -
received_at``, read from its row: the whole path (store, doorbell, broker, drain, handler).

Targets: ORM broker p50 <= 100 ms and p99 <= 300 ms; Redis p50 <= 50 ms (its p99 is shown);
every event accepted and processed.
"""

import argparse
import http.client
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common  # noqa: E402

TOKEN = "bench-webhook-token-0123456789abcdef"
ROUTE = "/api/webhooks/email"
FIXTURE = common.ROOT / "tests" / "webhooks" / "fixtures" / "email_sent__basic.json"
# broker: {figure: the most it may be, in ms}
TARGETS = {"orm": {"p50_ms": 100, "p99_ms": 300}, "redis": {"p50_ms": 50}}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--brokers", default="orm,redis", help="orm, redis or both (orm,redis)")
    parser.add_argument("--rate", type=float, default=50, help="events per second")
    parser.add_argument("--seconds", type=float, default=20, help="how long events are sent")
    parser.add_argument("--workers", type=int, default=2, help="qcluster workers")
    parser.add_argument("--port", type=int, default=8260, help="within 8200-8299")
    parser.add_argument("--keep-db", action="store_true")
    return parser.parse_args()


def sql(query: str, params=None):
    import psycopg

    with psycopg.connect(f"{common.PG_URL}/{common.DB_NAME}", autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return cursor.fetchall() if cursor.description else None


def bodies(prefix: str, n: int) -> list[bytes]:
    """``n`` distinct EMAIL_SENT deliveries: scheduled email ids ``<prefix><i>``, 300 leads."""
    template = json.loads(FIXTURE.read_bytes())
    out = []
    for i in range(n):
        payload = json.loads(json.dumps(template))
        payload["data"]["scheduled_email"]["id"] = int(f"{prefix}{i:07d}")
        payload["data"]["lead"]["email"] = f"e2e{i % 300}@example.com"
        payload["data"]["lead"]["id"] = 200000 + i % 300
        out.append(json.dumps(payload).encode())
    return out


def paced_send(port: int, payloads: list[bytes], rate: float, threads: int = 8) -> dict:
    """POST payload i at start + i / rate (a fixed schedule, not as fast as possible): each of
    ``threads`` keep-alive connections takes every ``threads``-th event. Bounded by the list."""
    start = time.monotonic() + 0.2
    statuses: list[int] = []
    late: list[float] = []
    headers = {"X-Webhook-Token": TOKEN, "Content-Type": "application/json"}

    def worker(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for i in range(k, len(payloads), threads):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            late.append(max(0.0, -delay))
            for attempt in (1, 2):
                try:
                    conn.request("POST", ROUTE, payloads[i], headers)
                    response = conn.getresponse()
                    response.read()
                    statuses.append(response.status)
                    break
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    if attempt == 2:
                        statuses.append(0)
        conn.close()

    pool = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=len(payloads) / rate + 60)
    return {"sent": len(statuses), "accepted": statuses.count(202),
            "send_seconds": time.monotonic() - start,
            "late_p99_ms": common.percentile(late, 99) * 1000}


def finished(prefix: str) -> int:
    return sql("SELECT count(*) FROM webhooks_webhookevent WHERE dedupe_key LIKE %s "
               "AND status IN ('succeeded', 'failed')", (f"inboxxia:EMAIL_SENT:{prefix}%",))[0][0]


def measure(args, broker: str) -> dict:
    env = common.bench_env(broker=broker, WEBHOOK_TOKEN=TOKEN, INBOXXIA_EMAIL_SENT_ASYNC="true",
                           Q_WORKERS=args.workers)
    common.recreate_database(common.DB_NAME)
    common.redis_flush()
    server = cluster = None
    try:
        common.manage(env, "migrate", "--no-input", "-v", "0")
        sql("INSERT INTO jobs_client (name, emailbison_workspace_id, emailbison_base_url, "
            "emailbison_api_key, availability_source, booking_provider, time_zone, "
            "auto_follow_up_on_reply, first_touch_slot_offers) "
            "VALUES ('Acme Outreach (bench)', '42', '', '', '', '', 'UTC', true, false)")
        server = common.start_gunicorn(env, port=args.port, probe=ROUTE, probe_status=200,
                                       log_name=f"gunicorn-latency-{broker}.log")
        cluster = common.start([common.PYTHON, "manage.py", "qcluster"], env,
                               f"qcluster-latency-{broker}.log")
        warm = bodies("61", 20)
        paced_send(args.port, warm, 10)  # the cluster is up and its workers have imported
        common.wait_until(lambda: finished("61") == len(warm), timeout=90, interval=0.2,
                          what="the warm-up events to be processed")
        time.sleep(2)
        n = int(args.rate * args.seconds)
        sent = paced_send(args.port, bodies("62", n), args.rate)
        try:
            common.wait_until(lambda: finished("62") >= n, timeout=120, interval=0.2,
                              what="every event to be processed")
        except TimeoutError:
            pass  # reported below as unprocessed
        rows = sql("SELECT status, EXTRACT(EPOCH FROM processed_at - received_at) * 1000 "
                   "FROM webhooks_webhookevent WHERE dedupe_key LIKE %s",
                   ("inboxxia:EMAIL_SENT:62%",))
        # Which drainers did the work (claimed_by is kept after success).
        by_worker = dict(sql("SELECT claimed_by, count(*) FROM webhooks_webhookevent "
                             "WHERE dedupe_key LIKE %s GROUP BY 1", ("inboxxia:EMAIL_SENT:62%",)))
    finally:
        common.stop(cluster, timeout=30)
        common.stop(server)
        common.redis_flush()
        if not args.keep_db:
            common.drop_database(common.DB_NAME)
    latencies = [float(ms) for status, ms in rows if status == "succeeded"]
    result = {**sent, "events": n, "stored": len(rows), "succeeded": len(latencies),
              "p50_ms": common.percentile(latencies, 50),
              "p90_ms": common.percentile(latencies, 90),
              "p99_ms": common.percentile(latencies, 99),
              "max_ms": max(latencies, default=float("nan")), "events_by_drainer": by_worker}
    print(f"  {broker:5} {result['succeeded']}/{n} processed  p50 {result['p50_ms']:.1f} ms  "
          f"p90 {result['p90_ms']:.1f} ms  p99 {result['p99_ms']:.1f} ms  max "
          f"{result['max_ms']:.1f} ms  (send lateness p99 {result['late_p99_ms']:.1f} ms; "
          f"events per drainer {sorted(by_worker.values())})", flush=True)
    return result


def table(results: dict) -> tuple[str, bool]:
    lines = ["| broker | events | processed | p50 ms | p90 ms | p99 ms | max ms | target |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    all_pass = True
    for broker, row in results.items():
        complete = row["succeeded"] == row["events"] == row["accepted"]
        verdicts = [f"{figure.removesuffix('_ms')} <= {limit} ms "
                    f"{common.verdict(row[figure] <= limit)}"
                    for figure, limit in TARGETS[broker].items()]
        verdicts.append(f"all processed {common.verdict(complete)}")
        all_pass &= complete and all(row[f] <= limit for f, limit in TARGETS[broker].items())
        lines.append(f"| {broker} | {row['events']} | {row['succeeded']} | {row['p50_ms']:.1f} | "
                     f"{row['p90_ms']:.1f} | {row['p99_ms']:.1f} | {row['max_ms']:.1f} | "
                     f"{'; '.join(verdicts)} |")
    return "\n".join(lines), all_pass


def main() -> int:
    args = parse_args()
    common.exit_on_sigterm()
    if not 8200 <= args.port <= 8299:
        raise SystemExit("--port must be within 8200-8299")
    machine = common.machine()
    print(f"webhook latency bench on {machine['nproc']} x {machine['cpu']}, {machine['date']}; "
          f"{args.rate:g} events/s for {args.seconds:g} s, qcluster {args.workers} workers",
          flush=True)
    results = {broker.strip(): measure(args, broker.strip()) for broker in args.brokers.split(",")}
    text, all_pass = table(results)
    print()
    print(text)
    path = common.save_results("webhook-latency", {"machine": machine, "args": vars(args),
                                                   "results": results, "table": text})
    print(f"\n{'all targets PASS' if all_pass else 'some targets FAIL'}; details in {path}")
    return 0 if all_pass else 1


if __name__ == "__main__":
    sys.exit(main())
