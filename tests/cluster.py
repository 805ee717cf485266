"""A real Django-Q cluster for tests: ``manage.py qcluster`` as a subprocess on the test database.

    with qcluster(workers=2, env={"LEDGER_HEARTBEAT_SECONDS": "1"}) as cluster:
        ...enqueue work...
        poll(lambda: ..., timeout=30, what="the run succeeded", clusters=[cluster])

- The subprocess runs ``dispatch_project.test_settings`` with ``DATABASE_URL`` pointing at the
  current TEST database (SQLite: the test file; PostgreSQL: the test database) and
  ``DISPATCH_TEST_JOBS=1``, so it registers the same throwaway functions as the test process.
  REDIS_URL and Q_CLUSTER_NAME pass through from the environment. Use it from tests marked
  ``django_db(transaction=True)``: the subprocess only sees committed rows.
- Its log goes to a file; the tail is printed when the block exits with an error (pytest shows
  it with the failure) and included in ``poll``'s timeout message.
- ``pid`` is the main process; ``worker_pids()`` the live workers (Django-Q logs each worker's
  pid when it is ready; psutil is not installed, so the process tree is read from /proc).
- On Redis the queue of this cluster name is purged at start (tasks left by earlier tests whose
  rows were flushed).
- Stopping sends SIGTERM to the main pid only (graceful: workers finish their task), waits up
  to a deadline, then SIGKILLs whatever is left of the tree it started.
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from django.db import connection

ROOT = Path(__file__).resolve().parent.parent
READY = re.compile(r"Q Cluster \S+ .*running\.")
WORKER_READY = re.compile(r"ready for work at (\d+)")
START_SECONDS = 30
STOP_SECONDS = 20


def current_database_url() -> str:
    """A DATABASE_URL for the database the test process is using now."""
    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        name = settings["NAME"]
        if not name or name == ":memory:" or str(name).startswith("file:"):
            raise RuntimeError("a cluster subprocess needs a SQLite test database in a file")
        return "sqlite:///" + str(name)
    if connection.vendor == "postgresql":
        user = quote(settings.get("USER") or "", safe="")
        password = quote(settings.get("PASSWORD") or "", safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = settings.get("HOST") or "localhost"
        port = settings.get("PORT") or 5432
        return f"postgres://{auth}{host}:{port}/{quote(settings['NAME'], safe='')}"
    raise RuntimeError(f"no cluster harness for the {connection.vendor} backend")


def subprocess_environment(extra: dict) -> dict:
    """The environment of a subprocess on the test database (a cluster, a web server): the
    test settings, DISPATCH_TEST_JOBS=1, REDIS_URL and Q_CLUSTER_NAME passed through."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="dispatch_project.test_settings",
        DATABASE_URL=current_database_url(),
        DISPATCH_TEST_JOBS="1",
        LOG_LEVEL="INFO",
        Q_LOG_LEVEL="INFO",  # the harness reads Django-Q's start-up lines
        PYTHONUNBUFFERED="1",
    )
    env.update({name: str(value) for name, value in extra.items()})
    return env


class Cluster:
    def __init__(self, *, workers: int = 2, env: dict | None = None, skip_checks: bool = False,
                 label: str = "qcluster"):
        self.workers = workers
        self.extra_env = dict(env or {})
        self.skip_checks = skip_checks
        self.label = label
        self.process: subprocess.Popen | None = None
        self.stopped = False
        handle, path = tempfile.mkstemp(prefix=f"{label}-", suffix=".log")
        os.close(handle)
        self.log_path = Path(path)

    @property
    def pid(self) -> int:
        return self.process.pid

    def environment(self) -> dict:
        return subprocess_environment({"Q_WORKERS": self.workers, **self.extra_env})

    def start(self) -> "Cluster":
        _purge_redis_queue()
        command = [sys.executable, "manage.py", "qcluster"]
        if self.skip_checks:
            command.append("--skip-checks")
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=self.environment(), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited with {self.process.returncode} while "
                                   f"starting:\n{self.log_tail()}")
            if READY.search(self.log_text()) and len(self.worker_pids()) >= self.workers:
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.label} did not start within {START_SECONDS} s:\n"
                           f"{self.log_tail()}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_text().splitlines()[-lines:]
        return f"--- {self.label} log ({self.log_path}) ---\n" + "\n".join(text)

    def descendants(self) -> set[int]:
        """Every live process below the main pid (sentinel, workers, monitor, pusher)."""
        if not self.alive():
            return set()
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if fields[0] == "Z":
                continue
            children.setdefault(int(fields[1]), []).append(int(entry))
        found, todo = set(), [self.pid]
        while todo:
            for child in children.get(todo.pop(), []):
                if child not in found:
                    found.add(child)
                    todo.append(child)
        return found

    def worker_pids(self) -> list[int]:
        """Live workers of this cluster, oldest first (reincarnated ones included)."""
        tree = self.descendants()
        pids = [int(pid) for pid in WORKER_READY.findall(self.log_text())]
        return [pid for pid in dict.fromkeys(pids) if pid in tree]

    def kill_worker(self, pid: int) -> None:
        """SIGKILL one of this cluster's workers (refuses a pid that is not one)."""
        if pid not in self.worker_pids():
            raise AssertionError(f"pid {pid} is not a live worker of {self.label}")
        os.kill(pid, signal.SIGKILL)

    def stop(self) -> None:
        if self.process is None or self.stopped:
            return
        self.stopped = True
        tree = self.descendants()
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        for pid in tree:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _purge_redis_queue() -> None:
    """On Redis, drop tasks an earlier test left in this cluster name's list (their rows were
    flushed with the test database). The ORM broker's queue is a table, flushed already."""
    from django_q.conf import Conf

    if Conf.REDIS and not Conf.ORM:
        from ledger.enqueue import broker

        broker().purge_queue()


@contextmanager
def qcluster(*, workers: int = 2, env: dict | None = None, skip_checks: bool = False,
             label: str = "qcluster"):
    """Start a cluster for the block; on an error in the block, print its log tail."""
    cluster = Cluster(workers=workers, env=env, skip_checks=skip_checks, label=label).start()
    try:
        yield cluster
    except BaseException:
        print(cluster.log_tail())
        raise
    finally:
        cluster.stop()
        cluster.log_path.unlink(missing_ok=True)


def poll(predicate, *, timeout: float, what: str, clusters=(), each=None, interval: float = 0.2):
    """Call ``each()`` then ``predicate()`` until the predicate returns something truthy, which
    is returned; after ``timeout`` seconds fail, naming ``what`` and showing the clusters' logs.
    Fails at once if a cluster stopped by itself."""
    deadline = time.monotonic() + timeout
    while True:
        if each is not None:
            each()
        result = predicate()
        if result:
            return result
        for cluster in clusters:
            if not cluster.alive() and not cluster.stopped:
                raise AssertionError(f"{cluster.label} died while waiting for {what}:\n"
                                     f"{cluster.log_tail()}")
        if time.monotonic() > deadline:
            logs = "\n".join(cluster.log_tail() for cluster in clusters)
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{logs}")
        time.sleep(interval)
