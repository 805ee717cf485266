"""gunicorn's settings for this service. gunicorn reads ``./gunicorn.conf.py`` by default, so
``gunicorn dispatch_project.wsgi`` run from the project root picks this up; the benches pass it
explicitly. Command-line flags (workers, threads, bind) still override what is set here."""

import gc
import os

from prometheus_client import multiprocess


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
