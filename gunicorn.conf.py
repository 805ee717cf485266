"""gunicorn's settings for this service. gunicorn reads ``./gunicorn.conf.py`` by default, so
``gunicorn dispatch_project.wsgi`` run from the project root picks this up; the benches pass it
explicitly. Command-line flags (workers, threads, bind) still override what is set here."""

import gc


def post_worker_init(worker):
    """Freeze what the app loaded (~160,000 objects: Django, the apps, their modules) out of the
    garbage collector's reach. Measured here, a full collection walking them took 37-60 ms and
    stalled every request the worker held (the tail of the latency); frozen, 4-16 ms. The
    objects are never freed anyway: they live as long as the worker."""
    gc.collect()
    gc.freeze()
