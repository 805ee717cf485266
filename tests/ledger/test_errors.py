"""error_public_message: real driver errors carry hosts, ports, users and passwords; the public
message carries none of them (issue 22, item 7: a 503's enqueueError showed them)."""

import socket

import psycopg
import pytest
import redis
from django.db.utils import OperationalError

from ledger.errors import UNKNOWN_MESSAGE, error_public_message
from ledger.exceptions import EnqueueFailed

SECRETS = ("127.0.0.1", "localhost", "hunter2", "svc_user", "secretdb")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def caught(call) -> BaseException:
    try:
        call()
    except BaseException as error:  # noqa: BLE001 - the error is the subject
        return error
    raise AssertionError("expected an error")


def assert_public(message: str) -> None:
    """No host, user, password or database name (callers check the port they know)."""
    for secret in SECRETS:
        assert secret not in message, message


def test_public_message__postgres_connection_error_shows_no_host_port_or_user():
    """A psycopg connection failure (DSN with user and password) says "database unavailable"."""
    port = closed_port()
    error = caught(lambda: psycopg.connect(
        f"postgresql://svc_user:hunter2@127.0.0.1:{port}/secretdb", connect_timeout=2))
    assert "127.0.0.1" in str(error)  # the driver's own text has it
    wrapped = OperationalError(*error.args)
    wrapped.__cause__ = error
    message = error_public_message(wrapped)
    assert message == "OperationalError: the database is unavailable; retry later"
    assert_public(message)
    assert str(port) not in message


def test_public_message__redis_error_behind_enqueue_failed():
    """EnqueueFailed raised from a Redis ConnectionError names both classes, no address."""
    port = closed_port()
    client = redis.Redis(host="127.0.0.1", port=port, password="hunter2",
                         socket_connect_timeout=1)
    cause = caught(client.ping)
    assert str(port) in str(cause)
    try:
        raise EnqueueFailed(f"push failed: {cause}") from cause
    except EnqueueFailed as error:
        message = error_public_message(error)
    assert message == "EnqueueFailed (ConnectionError): the broker (Redis) did not answer; " \
                      "retry later"
    assert_public(message)
    assert str(port) not in message


@pytest.mark.parametrize("text", ["redis://:hunter2@127.0.0.1:6379/0",
                                  "password=hunter2 host=127.0.0.1 user=svc_user"])
def test_public_message__unknown_errors_never_echo_their_text(text):
    """Whatever an unknown error says stays in the log."""
    message = error_public_message(RuntimeError(text))
    assert message == f"RuntimeError: {UNKNOWN_MESSAGE}"
