"""Maintenance steps, registered by each app that owns data to recover or prune.

``background-maintenance`` runs them all in registration order. Upper apps register their own
steps here (the cron app prunes its windows, the webhooks app rescues stale leases) so the
ledger never imports them. A step registered ``every_sweep`` also runs on the sweeper's own
schedule every minute (``ledger.tasks.sweep``), which exists from ``migrate`` on, so it needs no
cron and no operator step (the webhooks app wakes a drain for due retries this way).
"""

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

MaintenanceStep = Callable[..., dict]
_steps: dict[str, MaintenanceStep] = {}
_every_sweep: set[str] = set()


def register_maintenance_step(name: str, step: MaintenanceStep, *,
                              every_sweep: bool = False) -> None:
    """``step(now=...)`` returns a small dict of counts for the maintenance result;
    ``every_sweep``: the sweeper's schedule runs it too, every minute."""
    if name in _steps:
        raise ValueError(f"A maintenance step named {name!r} is registered already.")
    _steps[name] = step
    if every_sweep:
        _every_sweep.add(name)


def maintenance_steps() -> dict[str, MaintenanceStep]:
    return dict(_steps)


def maintenance_run(*, now, sweep_only: bool = False) -> dict:
    """Run every step (``sweep_only``: those registered ``every_sweep``); one step's failure is
    reported and does not stop the others."""
    results, errors = {}, {}
    for name, step in _steps.items():
        if sweep_only and name not in _every_sweep:
            continue
        try:
            results[name] = step(now=now)
        except Exception as error:
            logger.exception("maintenance step failed", extra={"action": "maintenance_failed",
                                                                "step": name})
            errors[name] = f"{type(error).__name__}: {error}"[:500]
    if errors:
        results["errors"] = errors
    return results
