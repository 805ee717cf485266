"""Runtime overrides: set or clear one (audited in the same transaction), and record a trigger
a pause answered. Reads of the effective mode live in ``cron.modes``."""

import logging

from django.db import transaction

from cron.exceptions import InvalidOverride, UnknownCron
from cron.models import CronOverride, CronOverrideAudit, OverrideMode, PausedTrigger
from cron.registry import all_crons, get_cron

logger = logging.getLogger(__name__)
CLEAR = "clear"
MODE_CHOICES = (*OverrideMode.values, CLEAR)


def cron_override_set(*, cron: str, mode: str, reason: str, actor: str, now,
                      source: str = "command") -> CronOverride | None:
    """Set ``cron``'s override to ``mode`` (``clear`` removes it) and audit the change: who,
    when, old, new, why. Returns the override now in force (None once cleared)."""
    if get_cron(cron) is None:
        known = ", ".join(c.name for c in all_crons())
        raise UnknownCron(f"No cron named {cron!r}. Known crons: {known}.")
    if mode not in MODE_CHOICES:
        raise InvalidOverride(f"Mode {mode!r}: use one of {', '.join(MODE_CHOICES)}.")
    reason = (reason or "").strip()
    if not reason:
        raise InvalidOverride("Give a reason: the audit trail says why a cron's mode changed.")
    with transaction.atomic():
        current = CronOverride.objects.select_for_update().filter(cron=cron).first()
        old = current.mode if current else ""
        if mode == CLEAR:
            if current is not None:
                current.delete()
            override = None
        else:
            override, _ = CronOverride.objects.update_or_create(
                cron=cron, defaults={"mode": mode, "reason": reason, "set_by": actor[:150],
                                     "set_at": now})
        CronOverrideAudit.objects.create(cron=cron, old_mode=old,
                                         new_mode="" if mode == CLEAR else mode, reason=reason,
                                         actor=actor[:150], source=source, at=now)
    logger.warning("cron override changed", extra={
        "action": "cron_override_set", "cron": cron, "old": old or None,
        "new": None if mode == CLEAR else mode, "actor": actor, "source": source,
        "reason": reason})
    return override


def cron_trigger_paused_record(*, trigger, payload: dict, decision) -> PausedTrigger:
    """A trigger a pause answered: kept for the status page and the admin (no window is
    consumed)."""
    logger.info("cron trigger paused", extra={
        "action": "cron_paused", "cron": trigger.cron.name,
        "dispatch_key": payload["dispatchKey"], "correlation_id": trigger.correlation_id})
    return PausedTrigger.objects.create(
        cron=trigger.cron.name, dispatch_key=payload["dispatchKey"],
        source=trigger.source.value, correlation_id=trigger.correlation_id,
        params=payload["params"], requested_at=trigger.requested_at,
        override_reason=decision.override.reason if decision.override else "")
