"""Every Prometheus metric of the service, defined here at the bottom layer so every app emits.

Counters and histograms are emitted where events happen (one call per event, from the cron
service, the runner, the sweeper and the webhook route and drain). State gauges (runs in
progress, backlog, last success per cron...) are not defined here: they are read from the
database at scrape time (``cron.metrics_collector``), so every replica reports the same truth.

Multiprocess mode: with ``PROMETHEUS_MULTIPROC_DIR`` set in the environment before the process
starts, prometheus_client writes each process's values to files in that directory and the
scrape sums them (gunicorn workers and Django-Q workers alike). ``multiprocess_dir_clean``
removes the files of processes that are gone, at start (gunicorn's ``on_starting``).

Labels are low-cardinality by construction: cron and function names come from the registries,
statuses and reasons from TextChoices, event types are bounded to the known ones plus "other"
(``register_label_values``), never ids or keys.
"""

import functools
import logging
import os
import re
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram

logger = logging.getLogger(__name__)
# The event metrics' own registry (not prometheus_client's global one), read by the /metrics
# view when not in multiprocess mode.
EVENTS = CollectorRegistry()
OTHER = "other"
# Seconds: a cron's runs take milliseconds to minutes; a webhook event milliseconds.
RUN_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
EVENT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10)

TRIGGERS = Counter(
    "dispatch_triggers", "Cron triggers by outcome (the response's mode, or error).",
    ["cron", "outcome"], registry=EVENTS)
RUNS_FINISHED = Counter(
    "dispatch_runs_finished", "Runs that reached a terminal status in the runner or the sweeper.",
    ["function", "status", "reason"], registry=EVENTS)
RUN_DURATION = Histogram(
    "dispatch_run_duration_seconds", "A finished run's duration, first start to finish.",
    ["function"], buckets=RUN_BUCKETS, registry=EVENTS)
RUN_QUEUE_WAIT = Histogram(
    "dispatch_run_queue_wait_seconds",
    "From a run's queueing (or its attempt's due time) to the attempt's start.",
    ["function"], buckets=WAIT_BUCKETS, registry=EVENTS)
WEBHOOKS_RECEIVED = Counter(
    "dispatch_webhooks_received", "Webhook deliveries by event type and outcome.",
    ["event_type", "outcome"], registry=EVENTS)
WEBHOOK_PROCESSING = Histogram(
    "dispatch_webhook_processing_seconds", "One webhook event's processing (handler and finish).",
    ["event_type"], buckets=EVENT_BUCKETS, registry=EVENTS)

_label_values: dict[str, frozenset[str]] = {}


def register_label_values(label: str, values) -> None:
    """Bound a label to these values (anything else is reported as "other"). Upper apps fill
    it from their registries at start-up (the webhooks app: its event types)."""
    _label_values[label] = frozenset(_label_values.get(label, frozenset()) | set(values))


def bounded(label: str, value: str) -> str:
    allowed = _label_values.get(label)
    return value if allowed is None or value in allowed else OTHER


# --- emission points -----------------------------------------------------------------------


def _never_raises(emit):
    """An emission point is called from the business path (a finish, an ingest): a metrics
    failure (an unwritable multiprocess directory) is logged, never raised."""

    @functools.wraps(emit)
    def emitting(*args, **kwargs):
        try:
            emit(*args, **kwargs)
        except Exception:
            logger.warning("could not record a metric", exc_info=True,
                           extra={"action": "metrics_emit_failed", "metric": emit.__name__})

    return emitting


@_never_raises
def trigger_observed(*, cron: str, outcome: str) -> None:
    TRIGGERS.labels(cron=cron, outcome=outcome).inc()


@_never_raises
def run_claimed(claim) -> None:
    """A worker claimed a run (``ledger.claims.Claim``): its wait since queued or due."""
    run, attempt = claim.run, claim.attempt
    if run is None or attempt is None:
        return
    due = max(filter(None, (run.queued_at, run.next_attempt_at)))
    RUN_QUEUE_WAIT.labels(function=run.function).observe(
        max(0.0, (attempt.started_at - due).total_seconds()))


@_never_raises
def run_finished(run) -> None:
    """After a finish or a take-back: counted only once the run is terminal."""
    if run is None or not run.is_terminal:
        return
    RUNS_FINISHED.labels(function=run.function, status=run.status, reason=run.reason or "").inc()
    if run.duration_ms is not None:
        RUN_DURATION.labels(function=run.function).observe(run.duration_ms / 1000)


@_never_raises
def webhook_received(*, event_type: str, outcome: str) -> None:
    WEBHOOKS_RECEIVED.labels(event_type=bounded("event_type", event_type), outcome=outcome).inc()


@_never_raises
def webhook_processed(*, event_type: str, seconds: float) -> None:
    WEBHOOK_PROCESSING.labels(event_type=bounded("event_type", event_type)).observe(seconds)


# --- multiprocess mode ---------------------------------------------------------------------

_PID_FILE = re.compile(r"^[a-z_]+?_(\d+)\.db$")
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # A process that starts before the web server made it (a cluster) writes its files too.
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def multiprocess_dir_clean(path: str | None = None) -> int:
    """Create the multiprocess directory, and remove the files of processes that are not
    running on this host (all of them at a clean start). A live process's files stay, so a
    cluster sharing the directory with the web server keeps its counts when the web server
    restarts. Returns how many files went."""
    path = path or multiprocess_dir()
    if not path:
        return 0
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    removed = 0
    for file in directory.glob("*.db"):
        match = _PID_FILE.match(file.name)
        if match and not _alive(int(match.group(1))):
            file.unlink(missing_ok=True)
            removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
