"""gunicorn's threaded worker with a read timeout on every client socket (gunicorn.conf.py).

gunicorn's gthread worker waits for a new connection's first bytes off the thread pool, but once
a client has sent part of its headers (or declared a body longer than it sends), a thread blocks
on the socket for as long as the client likes: four slow clients held a 2 x 2 server for 34 s.
Here every blocking read of a connection times out after GUNICORN_READ_TIMEOUT seconds
(default 10): a stalled header read closes the connection, and a stalled body read raises
``TimeoutError`` in the application (the webhook view answers 400). A reverse proxy that
buffers requests (docs/deploy-proxy.md) remains the first line in front of it.
"""

import os
import socket

from gunicorn.workers.gthread import ThreadWorker

DEFAULT_READ_TIMEOUT_SECONDS = 10.0


def read_timeout_seconds() -> float:
    value = float(os.environ.get("GUNICORN_READ_TIMEOUT") or DEFAULT_READ_TIMEOUT_SECONDS)
    if value <= 0:
        raise ValueError("GUNICORN_READ_TIMEOUT must be a positive number of seconds")
    return value


class _ReadTimeoutSocket(socket.socket):
    """A client socket whose blocking mode is a timeout: gthread switches a connection between
    the poller (non-blocking) and a worker thread (blocking) with ``setblocking``, so this is
    the one place every thread's reads pass through."""

    __slots__ = ()
    read_timeout = DEFAULT_READ_TIMEOUT_SECONDS

    def setblocking(self, flag: bool) -> None:
        if flag:
            self.settimeout(self.read_timeout)
        else:
            super().setblocking(False)


class BoundedReadThreadWorker(ThreadWorker):
    def init_process(self):
        _ReadTimeoutSocket.read_timeout = read_timeout_seconds()
        super().init_process()

    def enqueue_req(self, conn):
        if type(conn.sock) is socket.socket:  # a new plain-TCP connection (not TLS-wrapped)
            conn.sock.__class__ = _ReadTimeoutSocket
        super().enqueue_req(conn)
