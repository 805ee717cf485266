"""gunicorn's settings for this service. gunicorn reads ``./gunicorn.conf.py`` by default, so
``gunicorn dispatch_project.wsgi`` run from the project root picks this up; the benches pass it
explicitly. Command-line flags (workers, threads, bind) still override what is set here.

Threaded workers (gthread) with a read timeout on every connection
(dispatch_project/gunicorn_worker.py), so slow clients cannot hold the server: a client that
stalls mid-header or mid-body is cut off after GUNICORN_READ_TIMEOUT seconds, and idle
connections wait in a poller, not in a thread. Environment (all optional):

| variable | default | meaning |
| --- | --- | --- |
| GUNICORN_BIND | see PORT | address(es), comma-separated (``unix:/run/app.sock``) |
| PORT | unset | bind ``0.0.0.0:$PORT``; neither set: ``127.0.0.1:8000`` |
| GUNICORN_WORKERS | 2 | worker processes |
| GUNICORN_THREADS | 8 | threads per worker (requests served at once per worker) |
| GUNICORN_READ_TIMEOUT | 10 | seconds a blocking read of a client may wait |
| GUNICORN_TIMEOUT | 30 | a worker silent this long is restarted |
| GUNICORN_KEEPALIVE | 5 | seconds an idle keep-alive connection is kept |
"""

import gc
import os

from prometheus_client import multiprocess


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name) or default)


def _bind() -> list[str]:
    if os.environ.get("GUNICORN_BIND"):
        return [part.strip() for part in os.environ["GUNICORN_BIND"].split(",") if part.strip()]
    if os.environ.get("PORT"):
        return [f"0.0.0.0:{int(os.environ['PORT'])}"]
    return ["127.0.0.1:8000"]


bind = _bind()
worker_class = "dispatch_project.gunicorn_worker.BoundedReadThreadWorker"
workers = _int("GUNICORN_WORKERS", 2)
threads = _int("GUNICORN_THREADS", 8)
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = 30  # SIGTERM: requests in flight get this long to finish
keepalive = _int("GUNICORN_KEEPALIVE", 5)
# Request line and headers: gunicorn's defaults, written down (a longer one is 400/431).
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
# Webhook bodies are bounded by WEBHOOK_MAX_BODY_BYTES in the view; other POSTs by Django's
# DATA_UPLOAD_MAX_MEMORY_SIZE.


def post_worker_init(worker):
    """Freeze what the app loaded (~160,000 objects: Django, the apps, their modules) out of the
    garbage collector's reach. Measured here, a full collection walking them took 37-60 ms and
    stalled every request the worker held (the tail of the latency); frozen, 4-16 ms. The
    objects are never freed anyway: they live as long as the worker."""
    gc.collect()
    gc.freeze()


def on_starting(server):
    """Multiprocess metrics (PROMETHEUS_MULTIPROC_DIR set): create the directory and remove the
    files of processes that are gone (every file at a clean start; a cluster sharing the
    directory keeps its live files). Imported here, not at the top, so that reading this file
    needs nothing of the project (whatever gunicorn's sys.path is when it reads it)."""
    from ledger.metrics import multiprocess_dir_clean

    multiprocess_dir_clean()


def child_exit(server, worker):
    """A worker exited: drop its live gauges' files (prometheus_client's bookkeeping); its
    counters and histograms stay, their counts belong in the totals."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
