"""Maintenance steps, registered by each app that owns data to recover or prune.

``background-maintenance`` runs them all in registration order. Upper apps register their own
steps here (the cron app prunes its windows, the webhooks app rescues stale leases) so the
ledger never imports them.
"""

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

MaintenanceStep = Callable[..., dict]
_steps: dict[str, MaintenanceStep] = {}


def register_maintenance_step(name: str, step: MaintenanceStep) -> None:
    """``step(now=...)`` returns a small dict of counts for the maintenance result."""
    if name in _steps:
        raise ValueError(f"A maintenance step named {name!r} is registered already.")
    _steps[name] = step


def maintenance_steps() -> dict[str, MaintenanceStep]:
    return dict(_steps)


def maintenance_run(*, now) -> dict:
    """Run every step; one step's failure is reported and does not stop the others."""
    results, errors = {}, {}
    for name, step in _steps.items():
        try:
            results[name] = step(now=now)
        except Exception as error:
            logger.exception("maintenance step failed", extra={"action": "maintenance_failed",
                                                                "step": name})
            errors[name] = f"{type(error).__name__}: {error}"[:500]
    if errors:
        results["errors"] = errors
    return results
