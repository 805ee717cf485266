"""Task functions for the runner bench: each appends ``kind id started_at`` to the file named by
BENCH_MARK_FILE (one small O_APPEND write, the same cost for both kinds). The bench keeps the
enqueue times itself."""

import os
import time

_fd: int | None = None


def _mark(kind: str, bench_id) -> None:
    global _fd
    started_at = time.time()
    if _fd is None:
        _fd = os.open(os.environ["BENCH_MARK_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(_fd, f"{kind} {bench_id} {started_at:.6f}\n".encode())


def bare_noop(bench_id) -> None:
    """A bare Django-Q task."""
    _mark("bare", bench_id)


def floor_noop(row_id: int, bench_id) -> None:
    """The floor a durable ledger cannot go under: a bare task plus one compare-and-set UPDATE
    to claim its row before the function and one to finish it after (each its own commit).
    No health check of the connection before them (ours folds it into its read: see
    ``ledger.db.checking_the_connection``)."""
    from django.db import connection

    from bench.benchapp.models import BenchRow

    connection.health_check_done = True
    BenchRow.objects.filter(pk=row_id, key="queued").update(key="running")
    _mark("floor", bench_id)
    BenchRow.objects.filter(pk=row_id, key="running").update(key="done")


def bare_sleep(seconds: float) -> None:
    """A bare Django-Q task that keeps a worker busy (idle-load bench)."""
    time.sleep(seconds)


def ledger_sleep(payload: dict) -> dict:
    """The ledger function ``bench-sleep``: a run that stays running, so heartbeats beat."""
    time.sleep(float(payload["seconds"]))
    return {"ok": True}


def ledger_noop(payload: dict) -> dict:
    """The ledger function ``bench-noop``, run through ledger.tasks.execute_run."""
    _mark("ours", payload["benchId"])
    return {"ok": True}
