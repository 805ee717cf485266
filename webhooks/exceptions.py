"""Webhook errors. The docstring is the default message; status codes follow from the types
(the table lives in webhooks/responses.py)."""

from django.core.exceptions import BadRequest, ImproperlyConfigured, PermissionDenied


class WebhooksError(Exception):
    """The webhook could not be handled."""

    def __init__(self, message: str | None = None):
        super().__init__(message or self.__doc__)


class WebhookAuthFailed(WebhooksError, PermissionDenied):
    """unauthorized"""


class WebhookNotConfigured(WebhooksError, ImproperlyConfigured):
    """webhook endpoint not configured: set WEBHOOK_TOKEN or WEBHOOK_SIGNING_SECRET"""


class WebhookBadRequest(WebhooksError, BadRequest):
    """the body is not a webhook event"""


class WebhookBodyTooLarge(WebhooksError):
    """the body is larger than WEBHOOK_MAX_BODY_BYTES"""


class DuplicateHandler(WebhooksError, ValueError):
    """A handler for that event type is registered already: unregister it first, or pass
    replace=True in a test."""


class TerminalEventError(WebhooksError):
    """The event can never be processed as sent (a required field is missing): it fails at once,
    without more attempts. Fix the data and requeue it from the admin."""


class RetryableEventError(WebhooksError):
    """The event cannot be processed yet (for example its workspace is unknown): retry later."""


class LeaseLost(WebhooksError):
    """This drainer's claim on the event expired and was taken back; its work is rolled back."""
