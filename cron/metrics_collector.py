"""``/metrics``: the event metrics (``ledger.metrics``) and the state gauges, read from the
database at scrape time, so every replica reports the same truth and nothing is summed across
processes.

State gauges: runs queued and in progress per function, webhook events by status, the oldest
due event's age, each cron's last success, window and next scheduled start, and whether a
cluster is up. A scrape costs a few indexed queries plus one per cron.
"""

import hmac
import logging

from django.db import DatabaseError
from django.utils import timezone
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from redis import RedisError

from cron import conf
from cron.registry import all_crons
from cron.selectors import cron_next_window_start
from ledger import metrics
from ledger.cluster_stats import clusters_alive
from ledger.models import RunStatus
from ledger.registry import all_functions
from ledger.selectors import active_runs_by_function, last_success_at
from webhooks.selectors import webhook_events_by_status, webhook_oldest_due_age_seconds

logger = logging.getLogger(__name__)


class StateCollector:
    """Gauges computed from the database on each collect."""

    def collect(self):
        now = timezone.now()
        try:
            families = [*self._runs(), *self._webhooks(now), *self._crons(now), self._cluster(now)]
        except (DatabaseError, RedisError):
            logger.warning("metrics: could not read the state from the database", exc_info=True,
                           extra={"action": "metrics_state_failed"})
            families = []
        yield from families
        yield GaugeMetricFamily("dispatch_state_collected",
                                "1 when this scrape read the state gauges from the database.",
                                value=1 if families else 0)

    def _runs(self):
        active = active_runs_by_function()
        functions = sorted({spec.name for spec in all_functions()} | {f for f, _ in active})
        running = GaugeMetricFamily("dispatch_runs_in_progress", "Runs running now.",
                                    labels=["function"])
        queued = GaugeMetricFamily("dispatch_runs_queued",
                                   "Runs queued (waiting for a worker, a slot or a retry).",
                                   labels=["function"])
        for function in functions:
            running.add_metric([function], active.get((function, RunStatus.RUNNING), 0))
            queued.add_metric([function], active.get((function, RunStatus.QUEUED), 0))
        yield running
        yield queued

    def _webhooks(self, now):
        events = GaugeMetricFamily("dispatch_webhook_events",
                                   "Webhook events pending, processing or failed.",
                                   labels=["status"])
        for status, count in webhook_events_by_status().items():
            events.add_metric([status], count)
        yield events
        yield GaugeMetricFamily("dispatch_webhook_oldest_due_age_seconds",
                                "How long the oldest due webhook event has waited (0: none due).",
                                value=webhook_oldest_due_age_seconds(now=now))

    def _crons(self, now):
        success = GaugeMetricFamily("dispatch_cron_last_success_timestamp_seconds",
                                    "When the cron's latest succeeded run finished (Unix time).",
                                    labels=["cron"])
        window = GaugeMetricFamily("dispatch_cron_window_seconds", "The cron's dispatch window.",
                                   labels=["cron"])
        upcoming = GaugeMetricFamily("dispatch_cron_next_window_timestamp_seconds",
                                     "When the cron's schedule next fires (Unix time).",
                                     labels=["cron"])
        for cron in all_crons():
            last = last_success_at(cron=cron.name)
            if last is not None:
                success.add_metric([cron.name], last.timestamp())
            window.add_metric([cron.name], conf.window_seconds(cron))
            upcoming.add_metric([cron.name], cron_next_window_start(cron, now=now).timestamp())
        yield success
        yield window
        yield upcoming

    def _cluster(self, now):
        return GaugeMetricFamily("dispatch_cluster_up",
                                 "1 when a Django-Q cluster of this name was seen within a minute.",
                                 value=1 if clusters_alive(now=now) else 0)


def metrics_text() -> bytes:
    """The whole scrape: event metrics (summed over processes in multiprocess mode) and the
    state gauges."""
    registry = CollectorRegistry()
    if metrics.multiprocess_dir():
        MultiProcessCollector(registry)
    else:
        registry.register(metrics.EVENTS)
    registry.register(StateCollector())
    return generate_latest(registry)


def metrics_token_accepted(authorization: str) -> bool:
    """No METRICS_TOKEN: open. Otherwise ``Bearer <token>``, compared in constant time."""
    token = conf.metrics_token()
    if not token:
        return True
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8", "replace"),
                               token.encode("utf-8"))
