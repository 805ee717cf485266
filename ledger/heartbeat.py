"""Lease renewal for running attempts: one lazy daemon thread per process.

A run registers its claim when its function starts and unregisters when it returns. The thread
(started on the first registration in a process, with its own database connection) sleeps until
the earliest beat is due and renews those leases with ``function_run_heartbeat``; a claim that is
no longer ours (taken back) is dropped. A run that finishes within one interval costs a dict
insert and delete, no thread and no statement. With nothing registered the thread sleeps without
a timeout: an idle worker does no polling.
"""

import itertools
import logging
import os
import threading
import time
from contextlib import contextmanager

from django.db import DatabaseError, connection
from django.utils import timezone

from ledger import conf
from ledger.claims import function_run_heartbeat

logger = logging.getLogger(__name__)


class _Beater:
    def __init__(self):
        self._cond = threading.Condition()
        self._due: dict[int, tuple[float, object, object]] = {}  # id -> (due, spec, claim)
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        self._pid = None
        self._waiting_until: float | None = None  # None: asleep with nothing due
        self.beats = 0  # renewals attempted (for tests)

    def register(self, spec, claim) -> int:
        due = time.monotonic() + conf.heartbeat_seconds()
        with self._cond:
            entry = next(self._ids)
            self._due[entry] = (due, spec, claim)
            self._ensure_thread()
            if self._waiting_until is None or due < self._waiting_until:
                self._cond.notify()
        return entry

    def unregister(self, entry: int) -> None:
        with self._cond:
            self._due.pop(entry, None)

    def _ensure_thread(self) -> None:
        # After a fork (Django-Q starts workers as processes) the parent's thread is not ours.
        if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
            self._pid = os.getpid()
            self._waiting_until = None
            self._thread = threading.Thread(target=self._loop, name="ledger-heartbeat",
                                            daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                due = [(entry, spec, claim) for entry, (at, spec, claim) in self._due.items()
                       if at <= now]
                idle_with_connection = not self._due and connection.connection is not None
                if not due and not idle_with_connection:
                    self._waiting_until = min((at for at, _, _ in self._due.values()), default=None)
                    self._cond.wait(None if self._waiting_until is None
                                    else self._waiting_until - now)
                    continue
                interval = conf.heartbeat_seconds()
                for entry, spec, claim in due:
                    self._due[entry] = (now + interval, spec, claim)
                self._waiting_until = now  # busy: a new registration need not wake us
            for entry, spec, claim in due:
                if not self._beat(spec, claim):
                    self.unregister(entry)
            if idle_with_connection:
                connection.close()  # hold no connection while no run needs beats

    def _beat(self, spec, claim) -> bool:
        self.beats += 1
        try:
            return function_run_heartbeat(
                run_id=claim.run.pk, token=claim.token, spec=spec,
                attempt_started_at=claim.attempt.started_at, now=timezone.now(),
            )
        except DatabaseError:
            logger.warning("heartbeat failed", exc_info=True,
                           extra={"action": "run_heartbeat_failed", "run_id": claim.run.pk})
            connection.close()  # a broken connection is reopened on the next beat
            return True


_beater = _Beater()


@contextmanager
def heartbeat(spec, claim):
    """Renew ``claim``'s lease every ``LEDGER_HEARTBEAT_SECONDS`` while the block runs."""
    entry = _beater.register(spec, claim)
    try:
        yield
    finally:
        _beater.unregister(entry)
