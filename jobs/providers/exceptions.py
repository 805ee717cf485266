"""Provider failures: one type per way a call can fail.

Every message names the client, the method and URL path, and the status (or what stood in for
one: ``timeout``, ``unreachable``); never the API key, the query string or a response body.
``kind`` is the counter a cron's result uses for it.
"""

from jobs.exceptions import JobsError


class ProviderError(JobsError):
    """A provider call failed."""

    kind = "providerError"

    def __init__(self, client: str, method: str = "", path: str = "", status: str = "",
                 detail: str = ""):
        self.client, self.method, self.path, self.status = client, method, path, status
        where = f" {method} {path}" if method else ""
        said = f" -> {status}" if status else ""
        super().__init__(f"{client}:{where}{said}" + (f" ({detail})" if detail else ""))


class ProviderNotConfigured(ProviderError):
    """The Client row lacks this provider's base URL or key: set them in the admin."""

    kind = "notConfigured"


class ProviderTimeout(ProviderError):
    """No answer within the timeout (or before the caller's deadline)."""

    kind = "timeout"


class ProviderUnreachable(ProviderError):
    """The connection failed (refused, reset, DNS); retried, then raised."""

    kind = "unreachable"


class ProviderRateLimited(ProviderError):
    """429 after the retries, or a ``Retry-After`` longer than the wait allowed."""

    kind = "rateLimited"


class ProviderServerError(ProviderError):
    """5xx after the retries."""

    kind = "serverError"


class ProviderRejected(ProviderError):
    """A 4xx other than 429 (bad key, unknown id): not retried."""

    kind = "rejected"


class ProviderBadResponse(ProviderError):
    """A 2xx whose body is not JSON or not in the shape the client reads."""

    kind = "badResponse"


class ProviderBudgetExhausted(ProviderError):
    """The caller's time budget was spent before the call could be made."""

    kind = "budgetExhausted"
