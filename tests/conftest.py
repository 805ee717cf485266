"""Shared fixtures: the cron client, throwaway crons and functions, backend detection."""

import pytest
from django.db import connection
from django.test import Client
from django_q.conf import Conf

from cron.registry import CronDefinition, CronFunction, register_cron, unregister_cron
from ledger.enqueue import broker
from ledger.registry import register_function, unregister_function

CRON_SECRET = "test-cron-secret"


def on_postgres() -> bool:
    return connection.vendor == "postgresql"


def on_redis() -> bool:
    return bool(Conf.REDIS) and not Conf.ORM

@pytest.fixture
def cron_client():
    """A test client that sends the cron secret."""
    client = Client(HTTP_AUTHORIZATION=f"Bearer {CRON_SECRET}")
    return client


@pytest.fixture
def make_function():
    """Register throwaway ledger functions; unregistered after the test."""
    names = []

    def make(name, func=None, **controls):
        register_function(name, func or (lambda payload: {"ok": True}), **controls)
        names.append(name)
        return name

    yield make
    for name in names:
        unregister_function(name)


@pytest.fixture
def make_cron(make_function):
    """Register a throwaway cron (and its functions); unregistered after the test."""
    names = []

    def make(name, *, functions=None, window_seconds=60, allowed_params=(), use_queue=True,
             force_inline_switch=False, **extra):
        if functions is None:
            functions = [(f"{name}-fn", name[:8], None)]
        cron_functions = []
        for fn_name, prefix, func in functions:
            make_function(fn_name, func, **extra.pop(f"{fn_name}_controls", {}))
            cron_functions.append(CronFunction(fn_name, prefix))
        definition = register_cron(
            CronDefinition(
                name=name,
                route=extra.pop("route", name),
                functions=tuple(cron_functions),
                window_seconds=window_seconds,
                schedule=extra.pop("schedule", "* * * * *"),
                allowed_params=frozenset(allowed_params),
                use_queue_default=use_queue,
                force_inline_switch=force_inline_switch,
                **extra,
            )
        )
        names.append(name)
        return definition

    yield make
    for name in names:
        unregister_cron(name)


@pytest.fixture(autouse=True)
def _empty_redis_queue():
    """Tasks pushed to Redis are not rolled back with the test's database: drop them after
    each test, so no later cluster test receives a run id from another test's database."""
    if on_redis():
        broker().delete_queue()
    yield
    if on_redis():
        broker().delete_queue()
