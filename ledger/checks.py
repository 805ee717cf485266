"""System checks for the ledger's configuration (``manage.py check``)."""

from django.core.checks import Error, Tags, register
from django_q.conf import Conf

from ledger.enqueue import BOOKKEEPING_SECONDS
from ledger.registry import all_functions


@register(Tags.compatibility)
def check_q_cluster_retry(app_configs=None, **kwargs):
    """Django-Q redelivers an unacknowledged ORM task ``retry`` seconds after its claim, even
    while it still runs: ``retry`` must exceed the longest function timeout plus margin."""
    errors = []
    longest = max((spec.timeout_seconds for spec in all_functions()), default=0)
    needed = longest + BOOKKEEPING_SECONDS
    retry = Conf.RETRY or 0
    if retry <= needed:
        errors.append(
            Error(
                f"Q_CLUSTER retry ({retry} s) is not above the longest function timeout plus "
                f"bookkeeping ({needed} s): a running task would be delivered twice.",
                hint="Raise LEDGER_MAX_TIMEOUT_SECONDS (it sets Q_CLUSTER retry and timeout), or "
                "lower the function's timeout_seconds.",
                id="ledger.E001",
            )
        )
    timeout = Conf.TIMEOUT or 0
    if timeout and timeout < needed:
        errors.append(
            Error(
                f"Q_CLUSTER timeout ({timeout} s) is below the longest function timeout plus "
                f"bookkeeping ({needed} s): Django-Q would kill the worker first.",
                hint="Raise LEDGER_MAX_TIMEOUT_SECONDS.",
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
