"""System checks for the ledger's configuration (``manage.py check``; ``qcluster`` runs them too,
so a misconfigured cluster refuses to start)."""

import os

from django.core.checks import Error, Tags, register
from django_q.conf import Conf

from ledger import conf, metrics
from ledger.registry import all_functions

RETRY_MARGIN_SECONDS = 30  # ORM redelivery must come well after the longest delivery ends


def longest_task_timeout_seconds() -> int:
    """Django-Q's limit for the longest delivery of any registered function."""
    longest = max((spec.timeout_seconds for spec in all_functions()), default=0)
    return conf.task_timeout_seconds(longest)


@register(Tags.compatibility)
def check_q_cluster_retry(app_configs=None, **kwargs):
    """Django-Q redelivers an unacknowledged ORM task ``retry`` seconds after its claim, even
    while it still runs: ``retry`` must exceed the longest delivery plus a margin."""
    errors = []
    needed = longest_task_timeout_seconds() + RETRY_MARGIN_SECONDS
    retry = Conf.RETRY or 0
    if retry <= needed:
        errors.append(
            Error(
                f"Q_CLUSTER retry ({retry} s) is not above the longest function timeout plus "
                f"the runner's room and margin ({needed} s): a running task would be "
                "delivered twice.",
                hint="Unset Q_RETRY_SECONDS (the default follows LEDGER_MAX_TIMEOUT_SECONDS), "
                "raise LEDGER_MAX_TIMEOUT_SECONDS, or lower the function's timeout_seconds.",
                id="ledger.E001",
            )
        )
    timeout = Conf.TIMEOUT or 0
    if timeout and timeout < longest_task_timeout_seconds():
        errors.append(
            Error(
                f"Q_CLUSTER timeout ({timeout} s) is below the longest function timeout plus "
                f"the runner's room ({longest_task_timeout_seconds()} s).",
                hint="Raise LEDGER_MAX_TIMEOUT_SECONDS to the longest timeout_seconds.",
                id="ledger.E002",
            )
        )
    if Conf.MAX_ATTEMPTS != 1 or not Conf.ACK_FAILURES:
        errors.append(
            Error(
                "Q_CLUSTER must have max_attempts 1 and ack_failures on: retries are the "
                "ledger's; Django-Q retrying as well would run attempts nobody counts.",
                hint="Keep the Q_CLUSTER block of dispatch_project/settings.py as shipped.",
                id="ledger.E003",
            )
        )
    return errors


@register(Tags.compatibility)
def check_metrics_directory(app_configs=None, **kwargs):
    """PROMETHEUS_MULTIPROC_DIR set: every process must be able to write its metric files there,
    or its counts are lost (``ledger.metrics`` logs each failed emission)."""
    path = metrics.multiprocess_dir()
    if not path or os.access(path, os.W_OK | os.X_OK):
        return []
    return [Error(f"PROMETHEUS_MULTIPROC_DIR ({path}) is not a writable directory.",
                  hint="Create it writable for the web server's and the cluster's user, or unset "
                  "PROMETHEUS_MULTIPROC_DIR for single-process metrics.", id="ledger.E004")]
