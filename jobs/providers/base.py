"""The base every provider client is built on: one pooled ``httpx.Client``, bearer auth, JSON in
and out, explicit timeouts, bounded retries.

Retried: 429, 5xx and connection failures, up to ``PROVIDER_MAX_RETRIES`` more attempts, each
waiting ``Retry-After`` when the provider sends it (seconds or an HTTP date), else
base * 2^(n-1) plus jitter. A wait longer than ``PROVIDER_BACKOFF_MAX_SECONDS``, or one that would
end past the caller's deadline, is not taken: the call fails with the error it has. Not retried:
timeouts (a slow provider stays slow, and each retry would spend the budget again), other 4xx,
and bodies that are not JSON.
"""

import logging
import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from datetime import UTC, datetime
from typing import Any

import httpx

from jobs.providers import conf
from jobs.providers.exceptions import (
    ProviderBadResponse,
    ProviderBudgetExhausted,
    ProviderError,
    ProviderNotConfigured,
    ProviderRateLimited,
    ProviderRejected,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnreachable,
)

logger = logging.getLogger(__name__)

# A request is not started with less than this left before the deadline.
MIN_REQUEST_SECONDS = 0.05


@dataclass(frozen=True)
class Deadline:
    """A point on the monotonic clock a piece of work must end by."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> "Deadline":
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def passed(self) -> bool:
        return self.remaining() <= 0


class ProviderClient:
    """JSON over HTTP to one provider account. Use as a context manager (closes the pool)."""

    name = "provider"

    def __init__(self, *, base_url: str, api_key: str, label: str = ""):
        self.label = f"{self.name} ({label})" if label else self.name
        if not (base_url or "").strip() or not (api_key or "").strip():
            raise ProviderNotConfigured(self.label, detail="no base URL or API key set")
        self._api_key = api_key.strip()
        base_url = base_url.strip().rstrip("/")
        self._base_path = httpx.URL(base_url).path.rstrip("/")  # named in errors with the path
        self._http = httpx.Client(base_url=base_url,
                                  headers={"Accept": "application/json",
                                           "User-Agent": "dispatch/1"})

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self) -> None:
        self._http.close()

    def request_json(self, method: str, path: str, *, params: dict | None = None,
                     body: Any = None, deadline: Deadline | None = None) -> Any:
        """The decoded JSON of a 2xx answer (None for an empty body); a ProviderError else."""
        attempt, url_path = 0, self._base_path + path
        while True:
            attempt += 1
            answer, retryable, retry_after = self._attempt(method, path, url_path, params, body,
                                                           deadline)
            if not isinstance(answer, ProviderError):
                return answer
            if not retryable or attempt > conf.max_retries():
                raise answer
            wait = backoff_seconds(attempt, retry_after)
            if wait > conf.backoff_max_seconds() or (
                    deadline and wait + MIN_REQUEST_SECONDS >= deadline.remaining()):
                raise answer
            logger.info("%s: retrying in %.2f s", answer, wait,
                        extra={"action": "provider_retry", "provider": self.name,
                               "attempt": attempt})
            time.sleep(wait)

    def _attempt(self, method, path, url_path, params, body, deadline):
        """One request: (the decoded answer or an error, whether the error may be retried,
        the answer's ``Retry-After``). Errors name ``url_path``, the path the request went to."""
        timeout = conf.timeout_seconds()
        if deadline is not None:
            remaining = deadline.remaining()
            if remaining < MIN_REQUEST_SECONDS:
                raise ProviderBudgetExhausted(self.label, method, url_path, "not sent",
                                              "the run's time budget is spent")
            timeout = min(timeout, remaining)
        try:
            response = self._http.request(
                method, path, params=params, json=body, timeout=timeout,
                headers={"Authorization": f"Bearer {self._api_key}"})
        except httpx.TimeoutException:
            return ProviderTimeout(self.label, method, url_path, "timeout",
                                   f"no answer within {timeout:.1f} s"), False, None
        except httpx.TransportError as exc:
            return ProviderUnreachable(self.label, method, url_path, "unreachable",
                                       type(exc).__name__), True, None
        except httpx.RequestError as exc:  # an answer httpx could not read (decoding, redirects)
            return ProviderBadResponse(self.label, method, url_path, "unreadable",
                                       type(exc).__name__), False, None
        status = response.status_code
        if 200 <= status < 300:
            return self._decode(response, method, url_path), False, None
        retry_after = response.headers.get("Retry-After")
        if status == 429:
            return ProviderRateLimited(self.label, method, url_path, "429"), True, retry_after
        if status >= 500:
            error = ProviderServerError(self.label, method, url_path, str(status))
            return error, True, retry_after
        return ProviderRejected(self.label, method, url_path, str(status)), False, None

    def _decode(self, response: httpx.Response, method: str, path: str) -> Any:
        if not response.content.strip():
            return None
        try:
            return response.json()
        except ValueError:
            raise ProviderBadResponse(self.label, method, path, str(response.status_code),
                                      "the body is not JSON") from None

    def bad_shape(self, method: str, path: str, detail: str) -> ProviderBadResponse:
        """For the clients: a 2xx answer whose JSON is not in the shape they read."""
        return ProviderBadResponse(self.label, method, self._base_path + path, "200", detail)


def backoff_seconds(attempt: int, retry_after: str | None) -> float:
    """The wait after failed attempt ``attempt`` (1-based): ``Retry-After`` when it parses,
    else base * 2^(attempt-1) plus up to 25 % jitter."""
    told = parse_retry_after(retry_after)
    if told is not None:
        return told
    base = conf.backoff_base_seconds() * 2 ** (attempt - 1)
    return base + random.uniform(0, base * 0.25)


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """``Retry-After`` as seconds from now (delta-seconds or an HTTP date); None if absent or
    unreadable. A date in the past is 0."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
