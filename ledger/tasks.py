"""Entry points Django-Q calls. Module-level, primitives in, small results out."""

from django.utils import timezone

from ledger.maintenance import maintenance_run
from ledger.runner import execute_run as _execute_run
from ledger.sweeper import ledger_sweep


def execute_run(run_ref: int | str, function: str | None = None) -> dict | None:
    """One delivery of a run: its primary key. Tasks queued by an earlier version carry its task
    id and its function name instead; both are still accepted."""
    run = _execute_run(run_ref)
    return None if run is None else {"run": run.pk, "status": run.status}


def sweep() -> dict:
    """The sweeper's own schedule (every minute; it exists from ``migrate`` on, see
    ``ledger.schedules``): the ledger's sweep, then the steps other apps registered
    ``every_sweep`` (under their names)."""
    now = timezone.now()
    return {**ledger_sweep(now=now), **maintenance_run(now=now, sweep_only=True)}
