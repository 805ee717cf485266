"""Ledger errors. The docstring is the default message; messages say what to do."""


class LedgerError(Exception):
    """The run ledger could not do what was asked."""

    def __init__(self, message: str | None = None):
        super().__init__(message or self.__doc__)


class UnknownFunction(LedgerError, LookupError):
    """No function is registered under that name: check the name, or register it from an app's
    ready() with ledger.registry.register_function."""


class DuplicateFunction(LedgerError, ValueError):
    """A function with that name is registered already: give the new one another name."""


class NonRetryableError(Exception):
    """Raise (or subclass) from a job function to fail the run at once, without more attempts."""


class RunSkipped(Exception):
    """Raise from a job function that decided not to do its work (another run holds its own
    lock): the run ends ``skipped`` with this reason instead of ``succeeded``, so it does not use
    up its idempotency key's one success."""

    def __init__(self, reason: str, *, result: dict | None = None):
        super().__init__(f"skipped: {reason}")
        self.reason = reason
        self.result = result


class RunTimedOut(BaseException):
    """The function ran past its timeout. A BaseException, like Django-Q's TimeoutException,
    so a job's ``except Exception`` cannot swallow it."""


class EnqueueFailed(LedgerError):
    """The broker did not take the task; nothing was handed over. Retry, or check the broker."""
