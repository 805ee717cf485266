"""The webhook bench's drain case, run by bench_webhooks.py in a subprocess with the bench
settings (it needs Django and the app code). Prints one BENCH_JSON line.

    python bench/webhook_drain.py --events 1000 --rounds 2 --batch 50

For each round, in alternating order:

- ``ours``: ``webhook_events_drain`` over N pending EMAIL_SENT events (the real handler: client,
  campaign, lead, message, lead rollup, follow-ups), in this one process: events/s per worker;
- ``bare``: a bare claim-and-mark loop over N pending events of the same table, the least a
  drain can do: one raw claim statement per batch (``UPDATE ... FROM (SELECT ... FOR UPDATE SKIP
  LOCKED LIMIT n) RETURNING``), then one fenced UPDATE to ``succeeded`` per event; no handler,
  no JSON parse.

Each round stores N fresh events (distinct scheduled_email ids, 200 distinct leads) with the
queue otherwise empty, and checks that every one ended ``succeeded``. SQL statements and the
time spent in them are counted with a connection execute_wrapper, to say what dominates.
"""

import argparse
import json
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FIXTURE = Path(__file__).resolve().parent.parent / "tests/webhooks/fixtures/email_sent__basic.json"


class QueryCounter:
    """execute_wrapper: statements and seconds spent in them, by first word."""

    def __init__(self):
        self.count = 0
        self.seconds = 0.0
        self.by_kind: dict[str, int] = {}

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started
            self.count += 1
            kind = sql.lstrip().split(None, 1)[0].upper()
            self.by_kind[kind] = self.by_kind.get(kind, 0) + 1


def store_events(n: int, tag: str) -> list[int]:
    from django.utils import timezone

    from webhooks.models import EventStatus, WebhookEvent
    from webhooks.parsing import parse_event

    template = json.loads(FIXTURE.read_bytes())
    now = timezone.now()
    events = []
    for i in range(n):
        payload = json.loads(json.dumps(template))
        payload["data"]["scheduled_email"]["id"] = f"{tag}{i:07d}"
        payload["data"]["lead"]["email"] = f"lead{i % 200}@example.com"
        payload["data"]["lead"]["id"] = 100000 + i % 200
        body = json.dumps(payload).encode()
        parsed = parse_event(body=body)
        events.append(WebhookEvent(
            event_type=parsed.event_type, dedupe_key=parsed.dedupe_key,
            lead_email=parsed.lead_email, raw_body=body, status=EventStatus.PENDING,
            attempts=0, max_attempts=8, next_attempt_at=now, received_at=now))
    created = WebhookEvent.objects.bulk_create(events, batch_size=500)
    return [event.pk for event in created]


def bare_drain(batch: int) -> int:
    """Claim batches in one raw statement each, mark each event succeeded."""
    from django.db import connection, transaction
    from django.utils import timezone

    done = 0
    while True:
        token = uuid.uuid4()
        now = timezone.now()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "UPDATE webhooks_webhookevent AS e SET status = 'processing', claim_token = %s, "
                "claimed_by = %s, lease_expires_at = %s, attempts = attempts + 1 "
                "FROM (SELECT id FROM webhooks_webhookevent WHERE status = 'pending' "
                "AND next_attempt_at <= %s ORDER BY next_attempt_at, id LIMIT %s "
                "FOR UPDATE SKIP LOCKED) AS due WHERE e.id = due.id "
                "RETURNING e.id, e.event_type, e.dedupe_key, e.raw_body, e.attempts, "
                "e.max_attempts, e.received_at",
                [token, "bare", now + timedelta(seconds=120), now, batch])
            rows = cursor.fetchall()
        if not rows:
            return done
        for row in sorted(rows):
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE webhooks_webhookevent SET status = 'succeeded', processed_at = %s, "
                    "claim_token = NULL, lease_expires_at = NULL, next_attempt_at = NULL "
                    "WHERE id = %s AND claim_token = %s AND status = 'processing'",
                    [timezone.now(), row[0], token])
            done += 1


def run_round(kind: str, n: int, batch: int, tag: str) -> dict:
    from django.db import connection
    from django.db.models import Count

    from webhooks.models import WebhookEvent
    from webhooks.processing import webhook_events_drain

    ids = store_events(n, tag)
    counter = QueryCounter()
    started = time.perf_counter()
    with connection.execute_wrapper(counter):
        if kind == "ours":
            counts = webhook_events_drain(budget_seconds=600, batch_size=batch)
            processed = counts["processed"]
        else:
            processed = bare_drain(batch)
    seconds = time.perf_counter() - started
    statuses = dict(WebhookEvent.objects.filter(pk__in=ids).values_list("status")
                    .annotate(n=Count("id")))
    assert processed == n and statuses == {"succeeded": n}, (kind, processed, statuses)
    return {"kind": kind, "events": n, "seconds": seconds, "events_per_s": n / seconds,
            "queries": counter.count, "queries_per_event": counter.count / n,
            "sql_seconds": counter.seconds, "sql_share": counter.seconds / seconds,
            "queries_by_kind": counter.by_kind}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()
    import django

    django.setup()
    from jobs.models import Client

    Client.objects.get_or_create(emailbison_workspace_id="42",
                                 defaults={"name": "Acme Outreach (bench)"})
    run_round("ours", 50, args.batch, "9990")  # warm-up: imports, first connections
    run_round("bare", 50, args.batch, "9991")
    rounds = []
    for number in range(args.rounds):
        order = ("ours", "bare") if number % 2 == 0 else ("bare", "ours")
        for kind in order:
            result = run_round(kind, args.events, args.batch,
                               f"{8000 + number * 2 + (kind == 'bare')}")
            print(f"  drain round {number + 1} {kind:4} {result['events_per_s']:8.1f} events/s "
                  f"{result['queries_per_event']:5.1f} SQL/event  SQL {result['sql_share']:.0%} "
                  f"of wall", file=sys.stderr, flush=True)
            rounds.append(result)
    print("BENCH_JSON " + json.dumps({"rounds": rounds}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
