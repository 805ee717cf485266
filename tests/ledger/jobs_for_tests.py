"""Throwaway job functions for the ledger's tests, registered in the test process (conftest) and
in cluster subprocesses (DISPATCH_TEST_JOBS=1 installs tests.ledger.apps).

State that must survive a killed worker lives in files whose paths the payload carries, so a
function can behave differently on its next attempt without touching the ledger it is tested by.
"""

import os
import signal
import time
from pathlib import Path

from ledger.exceptions import NonRetryableError, UnknownFunction
from ledger.registry import get_function, register_function


def _calls(payload: dict) -> int:
    """Count this call in the payload's ``counter`` file; returns the count including it."""
    path = Path(payload["counter"])
    with path.open("a") as counter:
        counter.write(f"{os.getpid()}\n")
    return len(path.read_text().splitlines())


def ok(payload: dict) -> dict:
    if payload.get("counter"):
        _calls(payload)
    time.sleep(float(payload.get("sleep", 0)))
    return {"ok": True, "pid": os.getpid()}


def slow(payload: dict) -> dict:
    """Outlasts nothing in particular: two seconds unless the payload says otherwise."""
    time.sleep(float(payload.get("sleep", 2)))
    return {"slept": True}


def hang_first_call(payload: dict) -> dict:
    """The first call hangs (the test kills its worker); later calls return at once."""
    if _calls(payload) == 1:
        time.sleep(float(payload.get("sleep", 60)))
    return {"call": "later"}


def kill_own_worker(payload: dict) -> dict:
    """Kills the worker running it, every time (django-q2 #327 would loop on it forever)."""
    _calls(payload)
    os.kill(os.getpid(), signal.SIGKILL)
    return {}


def fail_then_succeed(payload: dict) -> dict:
    """Raises on the first ``fail_times`` calls, then succeeds."""
    call = _calls(payload)
    if call <= int(payload.get("fail_times", 2)):
        raise RuntimeError(f"planned failure {call}")
    return {"succeededOnCall": call}


def sleep_past_timeout(payload: dict) -> dict:
    time.sleep(float(payload.get("sleep", 30)))
    return {"late": True}


def fail_non_retryable(payload: dict) -> dict:
    _calls(payload)
    raise NonRetryableError("this input can never succeed")


def fail_huge(payload: dict) -> dict:
    raise ValueError("x" * 100_000)


def _key(payload: dict) -> str:
    return str(payload.get("key", ""))


TEST_JOBS = {
    "t-ok": (ok, {"timeout_seconds": 20, "retries": 0}),
    "t-hang-once": (hang_first_call, {"timeout_seconds": 20, "retries": 2}),
    "t-kill-self": (kill_own_worker, {"timeout_seconds": 5, "retries": 2}),
    "t-flaky": (fail_then_succeed, {"timeout_seconds": 5, "retries": 2,
                                    "backoff_base_seconds": 1.0}),
    "t-timeout": (sleep_past_timeout, {"timeout_seconds": 1, "retries": 0}),
    "t-non-retryable": (fail_non_retryable, {"timeout_seconds": 5, "retries": 3}),
    "t-huge-error": (fail_huge, {"timeout_seconds": 5, "retries": 0}),
    "t-limited": (ok, {"timeout_seconds": 20, "retries": 0, "concurrency_limit": 1}),
    "t-pair": (ok, {"timeout_seconds": 20, "retries": 0, "concurrency_limit": 2}),
    "t-keyed": (ok, {"timeout_seconds": 20, "retries": 0, "concurrency_limit": 1,
                     "concurrency_key": _key}),
    "t-slow": (slow, {"timeout_seconds": 20, "retries": 0}),
    # The overlap policies, each on a function of its own (a function's control).
    "t-slow-skip": (slow, {"timeout_seconds": 20, "retries": 0, "overlap": "skip"}),
    "t-slow-buffer-one": (slow, {"timeout_seconds": 20, "retries": 0, "overlap": "buffer-one"}),
    "t-flaky-buffer-one": (fail_then_succeed, {"timeout_seconds": 5, "retries": 2,
                                               "backoff_base_seconds": 1.0,
                                               "overlap": "buffer-one"}),
}


def register_test_jobs() -> None:
    """Register every test job once (idempotent: the test process may import this twice)."""
    for name, (func, controls) in TEST_JOBS.items():
        try:
            get_function(name)
        except UnknownFunction:
            register_function(name, func, **controls)
