"""A real gunicorn for tests: ``gunicorn.conf.py`` as shipped, on a free port, on the test database.

    with gunicorn_server(env={"GUNICORN_READ_TIMEOUT": "2"}) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)

Like tests/cluster.py: use it from tests marked ``django_db(transaction=True)`` (the server only
sees committed rows); the settings are ``dispatch_project.test_settings`` with DATABASE_URL
pointing at the current test database; the log's tail is printed when the block fails.
``worker_pids()`` reads the arbiter's children from /proc. Stopping is SIGTERM to the arbiter
(graceful), then SIGKILL to whatever is left.
"""

import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from tests.cluster import ROOT, current_database_url

START_SECONDS = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return sorted(found)


class Server:
    def __init__(self, *, env: dict | None = None, label: str = "gunicorn"):
        self.port = free_port()
        self.extra_env = dict(env or {})
        self.label = label
        self.process: subprocess.Popen | None = None
        handle, path = tempfile.mkstemp(prefix=f"{label}-", suffix=".log")
        os.close(handle)
        self.log_path = Path(path)

    @property
    def pid(self) -> int:
        return self.process.pid

    def environment(self) -> dict:
        env = dict(os.environ)
        env.update(DJANGO_SETTINGS_MODULE="dispatch_project.test_settings",
                   DATABASE_URL=current_database_url(), GUNICORN_BIND=f"127.0.0.1:{self.port}",
                   PYTHONUNBUFFERED="1")
        env.update({name: str(value) for name, value in self.extra_env.items()})
        return env

    def start(self) -> "Server":
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "dispatch_project.wsgi:application",
                 "--config", "gunicorn.conf.py", "--no-control-socket"],
                cwd=ROOT, env=self.environment(), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)
        workers = int(self.environment().get("GUNICORN_WORKERS") or 2)
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited while starting:\n{self.log_tail()}")
            if len(self.worker_pids()) >= workers and self.answers():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.label} did not start in {START_SECONDS} s:\n{self.log_tail()}")

    def answers(self) -> bool:
        try:
            return self.request("GET", "/api/webhooks/email", timeout=2)[0] == 200
        except OSError:
            return False

    def request(self, method: str, path: str, body: bytes | None = None, headers=None,
                timeout: float = 10) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    def worker_pids(self) -> list[int]:
        return children_of(self.pid) if self.alive() else []

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except FileNotFoundError:
            text = []
        return f"--- {self.label} log ({self.log_path}) ---\n" + "\n".join(text)

    def stop(self) -> None:
        if not self.alive():
            return
        workers = self.worker_pids()
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=35)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@contextmanager
def gunicorn_server(*, env: dict | None = None, label: str = "gunicorn"):
    server = Server(env=env, label=label).start()
    try:
        yield server
    except BaseException:
        print(server.log_tail())
        raise
    finally:
        server.stop()
        server.log_path.unlink(missing_ok=True)
