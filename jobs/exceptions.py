"""Jobs errors. Webhook handlers raise the webhooks app's TerminalEventError (fails at once) or
RetryableEventError (retried with backoff); these name the outreach cases."""

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
