"""Errors as they may be shown to a caller (a 503's ``enqueueError``): the error's class and a
fixed message for its kind, never the error's own text.

Driver messages carry the host, port, user, database name and sometimes the DSN or URL with
its password (``connection to server at "10.0.0.5", port 5432 failed``, ``Error 111 connecting
to redis.internal:6379``). Scrubbing patterns out of that text misses some; choosing from known
kinds cannot leak. The full error goes to the log, not to the response.
"""

from django.db import DatabaseError, InterfaceError, OperationalError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

# (kind, message), first match wins; checked along the error's cause chain.
PUBLIC_MESSAGES = (
    ((RedisConnectionError, RedisTimeoutError), "the broker (Redis) did not answer; retry later"),
    (RedisError, "the broker (Redis) refused the request; retry later"),
    ((OperationalError, InterfaceError), "the database is unavailable; retry later"),
    (DatabaseError, "the database refused the request; retry later"),
    ((ConnectionError, TimeoutError), "a backing service did not answer; retry later"),
)
UNKNOWN_MESSAGE = "unexpected error; the server log has the details"


def error_public_message(error: BaseException) -> str:
    """``"<ErrorClass>: <safe message>"``; with ``"(<CauseClass>)"`` when the message was chosen
    from a cause (an EnqueueFailed raised from a Redis ConnectionError). No host, port, user,
    password, DSN or URL ever comes from the error's text."""
    for cause in _chain(error):
        for kinds, message in PUBLIC_MESSAGES:
            if isinstance(cause, kinds):
                via = "" if cause is error else f" ({type(cause).__name__})"
                return f"{type(error).__name__}{via}: {message}"
    return f"{type(error).__name__}: {UNKNOWN_MESSAGE}"


def _chain(error: BaseException):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__
