"""A named lock held for the length of a run, so two runs of a cron never overlap.

PostgreSQL: a session advisory lock, taken and released on the same database connection (the
raw connection object is kept, so a reconnect between the two cannot release someone else's
lock or leave ours behind); when the release cannot run, the connection is closed, and a closed
session holds no locks, so a pooled connection never carries one into another run. SQLite: a
``CronLease`` row with an expiry, so a holder that died frees it after ``ttl_seconds``.
"""

import hashlib
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from jobs.models import CronLease

logger = logging.getLogger(__name__)


def advisory_key(name: str) -> int:
    """The lock's 64-bit key: stable across processes and releases."""
    digest = hashlib.sha256(f"dispatch:lock:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def cron_lock(name: str, *, ttl_seconds: int) -> Iterator[bool]:
    """Hold the lock ``name`` for the block; yields whether it was acquired (False: another
    holder has it, the block should do nothing)."""
    if connection.vendor == "postgresql":
        with _advisory_lock(name) as acquired:
            yield acquired
    else:
        with _lease(name, ttl_seconds) as acquired:
            yield acquired


@contextmanager
def _advisory_lock(name: str) -> Iterator[bool]:
    key = advisory_key(name)
    connection.ensure_connection()
    raw = connection.connection
    with raw.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
        acquired = bool(cursor.fetchone()[0])
    if not acquired:
        yield False
        return
    try:
        yield True
    finally:
        _advisory_unlock(raw, key, name)


def _advisory_unlock(raw, key: int, name: str) -> None:
    if raw.closed:
        return  # the session ended, and its locks with it
    try:
        with raw.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
    except Exception:
        # An aborted transaction or a broken connection: end the session so the lock goes.
        logger.warning("could not release a lock; closing its connection", exc_info=True,
                       extra={"action": "cron_lock_release_failed", "lock": name})
        if connection.connection is raw:
            connection.close()
        else:
            raw.close()


@contextmanager
def _lease(name: str, ttl_seconds: int) -> Iterator[bool]:
    token = uuid.uuid4().hex
    if not _lease_take(name, token, ttl_seconds):
        yield False
        return
    try:
        yield True
    finally:
        CronLease.objects.filter(name=name, holder=token).delete()


def _lease_take(name: str, token: str, ttl_seconds: int) -> bool:
    now = timezone.now()
    expires_at = now + timedelta(seconds=ttl_seconds)
    taken = CronLease.objects.filter(name=name, expires_at__lte=now).update(
        holder=token, expires_at=expires_at)
    if taken:
        return True
    try:
        with transaction.atomic():
            CronLease.objects.create(name=name, holder=token, expires_at=expires_at)
    except IntegrityError:
        return False  # held, and not expired
    return True
