"""The heartbeat: one lazy thread per process renews the leases of long runs, from its own
connection, and sleeps (holding no connection) while nothing needs a beat."""

import threading
import time

import pytest
from django.utils import timezone

from ledger import heartbeat as heartbeat_module
from ledger.claims import function_run_claim
from ledger.registry import get_function
from tests.ledger.helpers import fresh, run_create


def claim(target):
    return function_run_claim(run_id=target.pk, spec=get_function(target.function),
                              now=timezone.now())


def test_heartbeat__one_thread_per_process_and_no_beat_for_a_short_run(monkeypatch, settings):
    settings.LEDGER_HEARTBEAT_SECONDS = 0.2
    beater = heartbeat_module._Beater()
    monkeypatch.setattr(heartbeat_module, "_beater", beater)
    monkeypatch.setattr(beater, "_beat", lambda spec, claim: True)
    for _ in range(20):
        with heartbeat_module.heartbeat(spec=None, claim=None):
            pass
    thread = beater._thread
    assert thread is not None and thread.daemon and beater.beats == 0
    assert [t for t in threading.enumerate() if t is thread] == [thread]
    with heartbeat_module.heartbeat(spec=None, claim=None):
        pass
    assert beater._thread is thread
    time.sleep(0.5)
    assert beater.beats == 0  # nothing registered: no beat, no polling work


@pytest.mark.django_db(transaction=True)
def test_heartbeat__renews_the_lease_of_a_long_run_from_its_own_connection(settings):
    settings.LEDGER_HEARTBEAT_SECONDS = 0.2
    run = run_create("t-ok")
    got = claim(run)
    first_lease = fresh(run).lease_expires_at
    with heartbeat_module.heartbeat(get_function("t-ok"), got):
        deadline = time.monotonic() + 10
        while fresh(run).lease_expires_at == first_lease and time.monotonic() < deadline:
            time.sleep(0.05)
    renewed = fresh(run)
    assert renewed.lease_expires_at > first_lease and renewed.heartbeat_at > got.run.heartbeat_at
    after = fresh(run).heartbeat_at
    time.sleep(0.6)
    assert fresh(run).heartbeat_at == after  # unregistered: no more beats


@pytest.mark.django_db(transaction=True)
def test_heartbeat__thread_closes_its_connection_once_no_run_needs_beats(settings):
    settings.LEDGER_HEARTBEAT_SECONDS = 0.2
    run = run_create("t-ok")
    got = claim(run)
    with heartbeat_module.heartbeat(get_function("t-ok"), got):
        deadline = time.monotonic() + 10
        while fresh(run).heartbeat_at == got.run.heartbeat_at and time.monotonic() < deadline:
            time.sleep(0.05)
    deadline = time.monotonic() + 5
    while heartbeat_module._beater._waiting_until is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert heartbeat_module._beater._waiting_until is None  # asleep with nothing due
