"""The function registry: every job function the ledger can run, with its run controls.

Apps register their functions from ``AppConfig.ready``; the ledger looks them up by name. A
name is registered once: a second registration is an error that says how to fix it.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

from ledger.exceptions import DuplicateFunction, NonRetryableError, UnknownFunction

JobFunction = Callable[[dict], dict | None]
KeyFunction = Callable[[dict], str]


def dispatch_key_of(payload: dict) -> str:
    """Default idempotency key: the dispatch key (one success per function and window)."""
    return str(payload.get("dispatchKey") or "")


class Overlap(str, Enum):
    """What a new dispatched run does while an earlier one of the same function and overlap key
    (its cron and params) is in progress."""

    SKIP = "skip"  # recorded skipped at once
    BUFFER_ONE = "buffer-one"  # at most one waits behind the running one; more are skipped
    ALLOW_ALL = "allow-all"  # every run waits its turn for a concurrency slot


@dataclass(frozen=True)
class FunctionSpec:
    """One job function and its controls.

    - ``retries``: further attempts after the first (3: four attempts in all).
    - ``backoff_base_seconds`` / ``backoff_max_seconds``: attempt n waits base * 2^(n-1), capped,
      plus up to 25% jitter.
    - ``timeout_seconds``: one attempt's limit; past it the attempt ends ``timeout``.
    - ``concurrency_limit`` and ``concurrency_key``: at most N running at once per key (the key
      is computed from the payload; "" means one limit for the whole function).
    - ``idempotency_key``: at most one success per key (default: the dispatch key).
    - ``non_retryable``: exception types that fail the run at once.
    - ``overlap``: the policy for a dispatched run while an earlier one is in progress.
    """

    name: str
    func: JobFunction
    retries: int = 3
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 300.0
    timeout_seconds: int = 300
    concurrency_limit: int = 1
    concurrency_key: KeyFunction | None = None
    idempotency_key: KeyFunction = dispatch_key_of
    non_retryable: tuple[type[BaseException], ...] = field(default=(NonRetryableError,))
    overlap: Overlap = Overlap.ALLOW_ALL

    def __post_init__(self):
        if self.retries < 0:
            raise ValueError(f"{self.name}: retries must be 0 or more")
        if self.timeout_seconds < 1:
            raise ValueError(f"{self.name}: timeout_seconds must be at least 1")
        if self.concurrency_limit < 1:
            raise ValueError(f"{self.name}: concurrency_limit must be at least 1")

    @property
    def max_attempts(self) -> int:
        return self.retries + 1

    def backoff_seconds(self, attempt: int, *, rng: random.Random | None = None) -> float:
        """Delay before the attempt after ``attempt`` (1-based), jitter included."""
        base = min(self.backoff_max_seconds, self.backoff_base_seconds * 2 ** (attempt - 1))
        return base + (rng or random).uniform(0, base * 0.25)

    def concurrency_key_for(self, payload: dict) -> str:
        return str(self.concurrency_key(payload)) if self.concurrency_key else ""

    def idempotency_key_for(self, payload: dict) -> str:
        return str(self.idempotency_key(payload) or "")

    def is_retryable(self, error: BaseException) -> bool:
        return not isinstance(error, self.non_retryable)


_functions: dict[str, FunctionSpec] = {}


def register_function(name: str, func: JobFunction, **controls) -> FunctionSpec:
    """Register ``func`` under ``name`` with its controls (see FunctionSpec)."""
    if name in _functions:
        raise DuplicateFunction(
            f"A function named {name!r} is registered already (by "
            f"{_functions[name].func.__module__}); give the new one another name."
        )
    if "overlap" in controls:
        controls["overlap"] = Overlap(controls["overlap"])
    spec = FunctionSpec(name=name, func=func, **controls)
    _functions[name] = spec
    return spec


def unregister_function(name: str) -> None:
    """For tests that register throwaway functions."""
    _functions.pop(name, None)


def get_function(name: str) -> FunctionSpec:
    try:
        return _functions[name]
    except KeyError:
        raise UnknownFunction(
            f"No function is registered as {name!r}. Registered: {sorted(_functions)}."
        ) from None


def all_functions() -> list[FunctionSpec]:
    return list(_functions.values())
