"""The one way work reaches Django-Q: a wrapper around ``async_task``.

- Options go through ``q_options`` only: ``async_task`` silently takes job kwargs named
  ``timeout``, ``group``, ``hook``, ``cluster``... as its own.
- One broker object per process (a new Redis connection per call cost ~3.8 ms of CPU here).
- The task's name is our deterministic task id; Django-Q cannot dedupe on it, the ledger does.
"""

import os

from django.utils import timezone
from django_q.brokers import Broker, get_broker
from django_q.brokers.redis_broker import Redis as RedisBroker
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.tasks import async_task

from ledger import conf

RUN_TASK = "ledger.tasks.execute_run"

_broker: tuple[int, Broker] | None = None


def broker() -> Broker:
    """This process's broker (made anew after a fork)."""
    global _broker
    if _broker is None or _broker[0] != os.getpid():
        _broker = (os.getpid(), get_broker())
    return _broker[1]


def reset_broker() -> None:
    """Forget the cached broker (tests that switch Django-Q's configuration)."""
    global _broker
    _broker = None


def broker_is_transactional() -> bool:
    """True on the ORM broker on our own database alias: an enqueue inside ``atomic()`` commits
    or rolls back with our rows."""
    return bool(Conf.ORM) and not Conf.SYNC


class HeldTasks:
    """A stand-in broker for ``async_task`` that keeps each signed task instead of sending it:
    ``async_task`` still builds, signals and signs every task; only the send moves, so that
    the caller sends a dispatch's tasks together (``send_held``)."""

    def __init__(self) -> None:
        self.list_key = broker().list_key
        self.tasks: list[str] = []

    def enqueue(self, task: str) -> None:
        self.tasks.append(task)


class QueueRows(HeldTasks):
    """ORM broker: the held tasks as the rows the ORM broker would write
    (``django_q.brokers.orm.ORM.enqueue``), for the caller to write in its own statement."""

    @property
    def rows(self) -> list[OrmQ]:
        key, now = self.list_key or Conf.CLUSTER_NAME, timezone.now()
        return [OrmQ(key=key, payload=task, lock=now) for task in self.tasks]


def send_held(held: HeldTasks) -> None:
    """Send held tasks to the broker. Redis: one ``RPUSH`` of them all, one round trip where a
    push per task took one each, and all or none of them queued. Raises the broker's error."""
    if not held.tasks:
        return
    target = broker()
    if isinstance(target, RedisBroker):
        target.connection.rpush(target.list_key, *held.tasks)
        return
    for task in held.tasks:
        target.enqueue(task)


def enqueue(func_path: str, *args, task_name: str, timeout_seconds: int | None = None,
            into: HeldTasks | None = None) -> str:
    """Hand one task to the broker (or hold it ``into`` a ``HeldTasks``). Raises the
    broker's error (DatabaseError, RedisError).

    ``timeout_seconds`` is the task's own limit; Django-Q gets it plus bookkeeping room."""
    q_options = {"task_name": task_name, "broker": into or broker()}
    if timeout_seconds is not None:
        q_options["timeout"] = int(timeout_seconds) + conf.BOOKKEEPING_SECONDS
    return async_task(func_path, *args, q_options=q_options)


def enqueue_run(run_ref: int | str, *, function: str, task_name: str, timeout_seconds: int,
                into: HeldTasks | None = None) -> str:
    """Deliver one ledger run to a worker: ``ledger.tasks.execute_run(run_ref, function)``, the
    run's task id (a dispatched run: known before its row is written) or its primary key, and
    its function, so that the worker can claim it without reading it first. Django-Q's limit
    for the delivery is the function's ``timeout_seconds`` plus the runner's room."""
    budget = conf.task_timeout_seconds(timeout_seconds) - conf.BOOKKEEPING_SECONDS
    return enqueue(RUN_TASK, run_ref, function, task_name=task_name, timeout_seconds=budget,
                   into=into)
