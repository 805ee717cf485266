"""Health checks the probes and ``manage.py health`` run: each a function returning a
``CheckResult``, run together under one deadline so a hung dependency cannot hang the probe.

Details never carry hosts, ports or passwords: a check reports the exception's type and a
fixed sentence, and logs the rest.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ

from ledger import cluster_stats
from ledger.selectors import runs_overdue

logger = logging.getLogger(__name__)
PROBE_DEADLINE_SECONDS = 0.8  # every check answers within this, or counts as failed
DATABASE_STATEMENT_TIMEOUT_MS = 500
REDIS_TIMEOUT_SECONDS = 0.5


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    detail: str = ""

    def as_dict(self) -> dict:
        return {"ok": self.ok, "detail": self.detail} if self.detail else {"ok": self.ok}


Check = Callable[[], CheckResult]


def run_checks(checks: dict[str, Check], *,
               deadline_seconds: float = PROBE_DEADLINE_SECONDS) -> dict[str, CheckResult]:
    """Run every check in its own thread; one that has not answered by the deadline fails
    ("timed out"). Its thread is left to finish on its own (bounded by the dependency's own
    timeouts) and closes its database connection when it does."""
    results: dict[str, CheckResult] = {}
    threads = {}
    for name, check in checks.items():
        thread = threading.Thread(target=_run_one, args=(name, check, results),
                                  name=f"health-{name}", daemon=True)
        thread.start()
        threads[name] = thread
    deadline = time.monotonic() + deadline_seconds
    for thread in threads.values():
        thread.join(max(0.0, deadline - time.monotonic()))
    return {name: results.get(name) or CheckResult(False, f"timed out after {deadline_seconds} s")
            for name in checks}


def _run_one(name: str, check: Check, results: dict) -> None:
    try:
        results[name] = check()
    except Exception as error:
        logger.warning("health check failed", exc_info=True,
                       extra={"action": "health_check_failed", "check": name})
        results[name] = CheckResult(False, f"{type(error).__name__}: the check raised "
                                           "(see the log)")
    finally:
        connections.close_all()  # this thread's own connections


def healthy(results: dict[str, CheckResult]) -> bool:
    return all(result.ok for result in results.values())


# --- readiness -----------------------------------------------------------------------------


def check_database() -> CheckResult:
    """One ``SELECT 1``, with a statement timeout on PostgreSQL."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SET statement_timeout = {DATABASE_STATEMENT_TIMEOUT_MS}")
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return CheckResult(True)


_migrated = False  # once every migration is applied it stays so for this process's code


def check_migrations() -> CheckResult:
    """Every migration this code ships is applied."""
    global _migrated
    if _migrated:
        return CheckResult(True)
    executor = MigrationExecutor(connections[DEFAULT_DB_ALIAS])
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in plan[:5])
        return CheckResult(False, f"{len(plan)} unapplied migration(s): {names}; run migrate")
    _migrated = True
    return CheckResult(True)


def check_broker() -> CheckResult:
    """Redis: a PING with short socket timeouts. ORM broker: its queue table answers."""
    if Conf.ORM:
        OrmQ.objects.using(Conf.ORM).values_list("id").first()
        return CheckResult(True, "ORM broker (the database)")
    quick = {"socket_connect_timeout": REDIS_TIMEOUT_SECONDS,
             "socket_timeout": REDIS_TIMEOUT_SECONDS, "retry": Retry(NoBackoff(), 0)}
    if isinstance(Conf.REDIS, str):
        client = redis.Redis.from_url(Conf.REDIS, **quick)
    else:
        client = redis.Redis(**{**Conf.REDIS, **quick})
    try:
        client.ping()
    except redis.RedisError as error:
        return CheckResult(False, f"Redis did not answer ({type(error).__name__})")
    finally:
        client.close()
    return CheckResult(True)


# --- pipeline ------------------------------------------------------------------------------


def check_cluster() -> CheckResult:
    """A Django-Q cluster of this name was seen running within a minute."""
    alive = cluster_stats.clusters_alive(now=timezone.now())
    if not alive:
        return CheckResult(False, f"no {Conf.PREFIX!r} cluster seen within "
                                  f"{cluster_stats.SEEN_WITHIN_SECONDS} s")
    workers = sum(seen.workers for seen in alive)
    return CheckResult(True, f"{len(alive)} cluster(s), {workers} worker(s)")


def check_runs_overdue() -> CheckResult:
    """No run is still ``running`` past its timeout plus grace."""
    overdue = list(runs_overdue(now=timezone.now()).values_list("function", flat=True)[:100])
    if overdue:
        functions = ", ".join(sorted(set(overdue)))
        return CheckResult(False, f"{len(overdue)} run(s) past timeout + grace ({functions}); "
                                  "is the sweeper running?")
    return CheckResult(True)
