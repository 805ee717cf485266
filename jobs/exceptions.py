"""Jobs errors. Webhook handlers raise the webhooks app's TerminalEventError (fails at once) or
RetryableEventError (retried with backoff); these name the outreach cases."""

from ledger.exceptions import NonRetryableError
from webhooks.exceptions import RetryableEventError, TerminalEventError


class JobsError(Exception):
    """The job could not do what was asked."""

    def __init__(self, message: str | None = None):
        super().__init__(message or self.__doc__)


class MissingProviderField(JobsError, TerminalEventError):
    """The event lacks a field it cannot be processed without; it fails at once."""


class UnknownWorkspace(JobsError, RetryableEventError):
    """No Client has this EmailBison workspace id yet: create the client (Client.
    emailbison_workspace_id); the event is retried with backoff until then."""


class InvalidParam(JobsError, NonRetryableError):
    """A cron param has a value the job cannot use; the run fails at once (the message names
    the param, what it accepts and what it got): fix the scheduler's URL."""
