"""The trigger's observation: one log line and one metric per cron trigger, whatever its mode.

``cron.services.cron_trigger`` is wrapped with ``observed_trigger``: the line
(``action=cron_triggered``) carries the cron, the mode, the dispatch key and the correlation id,
so a correlation id from a response finds the trigger's line, its dispatch's and its runs'.
"""

import functools
import logging

from ledger import metrics

logger = logging.getLogger("cron.services")


def observed_trigger(cron_trigger):
    @functools.wraps(cron_trigger)
    def observed(*, trigger, **kwargs):
        try:
            outcome = cron_trigger(trigger=trigger, **kwargs)
        except BaseException:
            metrics.trigger_observed(cron=trigger.cron.name, outcome="error")
            raise
        mode = getattr(outcome.mode, "value", str(outcome.mode))
        metrics.trigger_observed(cron=trigger.cron.name, outcome=mode)
        logger.info("cron triggered", extra={
            "action": "cron_triggered", "cron": trigger.cron.name, "mode": mode,
            "source": getattr(trigger.source, "value", str(trigger.source)),
            "dispatch_key": outcome.payload.get("dispatchKey"),
            "correlation_id": trigger.correlation_id})
        return outcome

    return observed
