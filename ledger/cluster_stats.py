"""Which Django-Q clusters are alive: Django-Q's own ``Stat``, on both brokers.

Each cluster's sentinel saves a ``Stat`` (cluster id, host, pid, status, workers, timestamp)
every guard cycle (0.5 s) through its broker's ``set_stat``. The Redis broker keeps it in Redis
(3 s expiry). The ORM broker keeps it in Django's cache, which is per process here, so nobody
else could read it: ``OrmBrokerWithStats`` (settings: ``Q_CLUSTER["broker_class"]`` on the ORM
broker) keeps it in the ``ClusterStat`` table instead, written at most every ``WRITE_SECONDS``
and on every status change, so an idle cluster costs one small UPDATE every 15 s.

``clusters_seen`` reads them the same way on both brokers (``Stat.get_all``).
"""

import time
from dataclasses import dataclass
from datetime import timedelta

from django.db import DatabaseError, IntegrityError
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf, logger
from django_q.signing import BadSignature, SignedPackage
from django_q.status import Stat

from ledger.enqueue import broker as this_process_broker
from ledger.models import ClusterStat

WRITE_SECONDS = 15  # an idle cluster: four small UPDATEs a minute
EXPIRE_SECONDS = 60  # a stat not renewed for this long is gone (a killed cluster)
SEEN_WITHIN_SECONDS = 60
STOPPED = (Conf.STOPPED, Conf.STOPPING)


class OrmBrokerWithStats(ORM):
    """Django-Q's ORM broker, with cluster stats in the database instead of Django's cache."""

    def __init__(self, list_key: str = None):
        super().__init__(list_key=list_key)
        self._written: dict[str, tuple[float, str]] = {}  # key -> (monotonic, status)

    def set_stat(self, key: str, value: str, timeout: int):
        status = _status_of(value)
        last = self._written.get(key)
        if last and last[1] == status and time.monotonic() - last[0] < WRITE_SECONDS:
            return
        now = timezone.now()
        expires_at = now + timedelta(seconds=EXPIRE_SECONDS)
        try:
            if not ClusterStat.objects.filter(key=key).update(
                    value=value, updated_at=now, expires_at=expires_at):
                ClusterStat.objects.filter(expires_at__lt=now).delete()  # a new cluster: tidy
                try:
                    ClusterStat.objects.create(key=key, value=value, updated_at=now,
                                               expires_at=expires_at)
                except IntegrityError:
                    pass  # written meanwhile by the same cluster's other process
        except DatabaseError as error:  # the sentinel must survive a database outage
            logger.warning(f"could not save the cluster's stat: {error}")
            return
        self._written[key] = (time.monotonic(), status)

    def get_stat(self, key: str):
        return ClusterStat.objects.filter(key=key, expires_at__gt=timezone.now()).values_list(
            "value", flat=True).first()

    def get_stats(self, pattern: str):
        prefix = pattern.rstrip("*")
        return list(ClusterStat.objects.filter(
            key__startswith=prefix, expires_at__gt=timezone.now()).values_list("value", flat=True))


def _status_of(value: str) -> str:
    try:
        return str(SignedPackage.loads(value).status)
    except (BadSignature, AttributeError):
        return ""


@dataclass(frozen=True)
class ClusterSeen:
    cluster_id: str
    host: str
    pid: int
    status: str
    workers: int
    seen_at: object  # aware datetime

    def alive(self, *, now, within_seconds: float = SEEN_WITHIN_SECONDS) -> bool:
        return (self.status not in STOPPED
                and (now - self.seen_at).total_seconds() <= within_seconds)


def clusters_seen(*, broker=None) -> list[ClusterSeen]:
    """Every cluster of this name (``Q_CLUSTER["name"]``) whose stat has not expired."""
    return [
        ClusterSeen(cluster_id=str(stat.cluster_id), host=stat.host, pid=stat.pid,
                    status=str(stat.status), workers=len(stat.workers or []),
                    seen_at=stat.timestamp)
        for stat in Stat.get_all(broker=broker or this_process_broker())
    ]


def clusters_alive(*, now, within_seconds: float = SEEN_WITHIN_SECONDS,
                   host: str | None = None) -> list[ClusterSeen]:
    """Clusters seen running within ``within_seconds`` (on ``host`` if given)."""
    return [seen for seen in clusters_seen()
            if seen.alive(now=now, within_seconds=within_seconds)
            and (host is None or seen.host == host)]
