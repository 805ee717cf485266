"""A real gunicorn for tests: ``gunicorn dispatch_project.wsgi`` as a subprocess on the test
database, with the project's gunicorn.conf.py (its hooks included).

    with gunicorn(workers=2, env={...}) as server:
        httpx.get(server.url + "/metrics")

The environment is the cluster harness's (``tests.cluster.subprocess_environment``: the
current test database, the test settings, REDIS_URL and Q_CLUSTER_NAME passed through), so a
cluster started with the same ``env`` shares the database, the broker and, when given,
PROMETHEUS_MULTIPROC_DIR.
"""

import socket
import subprocess
import sys
import time
from contextlib import contextmanager

import httpx

from tests.cluster import ROOT, subprocess_environment

START_SECONDS = 30


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def gunicorn(*, workers: int = 2, env: dict | None = None):
    """Start gunicorn for the block; its output is shown when the block fails."""
    port = free_port()
    environment = subprocess_environment(env or {})
    log = ROOT / "var" / f"gunicorn-{port}.log"
    log.parent.mkdir(exist_ok=True)
    command = [sys.executable, "-m", "gunicorn", "dispatch_project.wsgi", "-c", "gunicorn.conf.py",
               "--workers", str(workers), "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "5"]
    with open(log, "wb") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=output,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        server.wait_ready()
        yield server
    except BaseException:
        print(f"--- gunicorn log ({log}) ---\n{server.log_text()[-6000:]}")
        raise
    finally:
        server.stop()
        log.unlink(missing_ok=True)


class Server:
    def __init__(self, process: subprocess.Popen, url: str, log):
        self.process, self.url, self.log = process, url, log

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n"
                                   f"{self.log_text()[-4000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer within {START_SECONDS} s")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # the arbiter: graceful stop of its workers
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
