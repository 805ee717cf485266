"""Small helpers shared by the ledger's tests."""

from django.utils import timezone

from ledger.models import FunctionAttempt, FunctionRun
from ledger.services import RunRequest, function_run_create, function_run_send


def run_create(function: str, payload: dict | None = None, **request) -> FunctionRun:
    """A queued run of ``function``, as a dispatch makes it (not sent)."""
    request.setdefault("source", "command")
    return function_run_create(
        request=RunRequest(function=function, payload=payload or {}, **request), now=timezone.now()
    )


def run_send(function: str, payload: dict | None = None, **request) -> FunctionRun:
    """A queued run handed to the broker, as a dispatch does."""
    run = run_create(function, payload, **request)
    function_run_send(run=run, now=timezone.now())
    return run


def fresh(run: FunctionRun) -> FunctionRun:
    return FunctionRun.objects.get(pk=run.pk)


def attempts(run: FunctionRun) -> list[FunctionAttempt]:
    return list(FunctionAttempt.objects.filter(run_id=run.pk).order_by("number"))
