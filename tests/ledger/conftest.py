"""Fixtures for the ledger's tests: the test jobs, a sweeping poll, backend markers."""

import pytest
from django.utils import timezone

from ledger.sweeper import ledger_sweep
from tests.cluster import poll
from tests.ledger.jobs_for_tests import register_test_jobs

register_test_jobs()


def sweep() -> dict:
    """What background-maintenance and the ledger:sweep schedule do every minute."""
    return ledger_sweep(now=timezone.now())


def sweeping_poll(predicate, *, timeout, what, clusters=(), also=None):
    """Poll with the sweeper doing its job between looks (and ``also()`` for extra checks)."""

    def each():
        sweep()
        if also is not None:
            also()

    return poll(predicate, timeout=timeout, what=what, clusters=clusters, each=each)


@pytest.fixture
def counter(tmp_path):
    """A fresh call-counter file path for a test job's payload."""
    index = iter(range(1000))

    def make() -> str:
        return str(tmp_path / f"calls-{next(index)}.txt")

    return make
