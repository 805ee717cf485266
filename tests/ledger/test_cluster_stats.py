"""Django-Q's cluster status on the ORM broker, kept in the database (ledger.cluster_stats)."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone
from django_q.conf import Conf
from django_q.signing import SignedPackage
from django_q.status import Stat, Status

from ledger.cluster_stats import OrmBrokerWithStats, clusters_alive, clusters_seen
from ledger.models import ClusterStat


def stat_of(status: str, *, host: str = "web-1") -> tuple[str, str]:
    stat = Status(pid=123, cluster_id=uuid.uuid4())
    stat.status, stat.host, stat.workers = status, host, [1, 2]
    return Stat.get_key(stat.cluster_id), SignedPackage.dumps(stat, True)


@pytest.mark.django_db
def test_set_stat__writes_once_per_interval_and_on_every_status_change():
    """The sentinel saves its stat every 0.5 s: the table is written on the first save and on
    a status change, not on every save."""
    broker = OrmBrokerWithStats()
    key, idle = stat_of(Conf.IDLE)
    broker.set_stat(key, idle, 3)
    first = ClusterStat.objects.get(key=key).updated_at
    broker.set_stat(key, stat_of(Conf.IDLE)[1], 3)
    assert ClusterStat.objects.get(key=key).updated_at == first
    _, stopped = stat_of(Conf.STOPPED)
    broker.set_stat(key, stopped, 3)
    assert ClusterStat.objects.get(key=key).value == stopped


@pytest.mark.django_db
def test_clusters_seen__reads_live_stats_and_skips_expired_and_stopped():
    """Stat.get_all on this broker: unexpired stats; alive means not stopped and recent."""
    broker = OrmBrokerWithStats()
    key, idle = stat_of(Conf.IDLE, host="worker-a")
    broker.set_stat(key, idle, 3)
    old_key, old = stat_of(Conf.IDLE, host="worker-b")
    broker.set_stat(old_key, old, 3)
    ClusterStat.objects.filter(key=old_key).update(expires_at=timezone.now() - timedelta(1))
    stopped_key, stopped = stat_of(Conf.STOPPED, host="worker-c")
    broker.set_stat(stopped_key, stopped, 3)
    seen = clusters_seen(broker=broker)
    assert sorted(s.host for s in seen) == ["worker-a", "worker-c"]
    assert seen[0].workers == 2
    now = timezone.now()
    assert [s.host for s in seen if s.alive(now=now)] == ["worker-a"]
    assert not [s for s in seen if s.alive(now=now + timedelta(minutes=2))]


@pytest.mark.django_db
def test_clusters_alive__filters_by_host():
    """``cluster_alive`` on one host ignores a cluster running on another."""
    if not Conf.ORM:
        pytest.skip("the configured broker is Redis: its stats live in Redis, not this table")
    broker = OrmBrokerWithStats()
    key, idle = stat_of(Conf.IDLE, host="elsewhere")
    broker.set_stat(key, idle, 3)
    now = timezone.now()
    assert [s.host for s in clusters_alive(now=now)] == ["elsewhere"]
    assert clusters_alive(now=now, host="here") == []
