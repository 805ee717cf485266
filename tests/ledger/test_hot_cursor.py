"""``ledger.db.hot_cursor``: hot statements bound on the server and prepared once per connection
on PostgreSQL, still Django's cursor for errors and the query log."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from ledger.db import hot_cursor
from tests.conftest import on_postgres

pytestmark = pytest.mark.django_db

needs_postgres = pytest.mark.skipif(
    not on_postgres(), reason="prepared statements are PostgreSQL's; on SQLite hot_cursor is "
                              "Django's own cursor, which every other test runs")
STATEMENT = "SELECT CAST(%s AS integer) + 1 AS hot_cursor_probe"


def prepared_probes() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_prepared_statements "
                       "WHERE statement LIKE %s", ["%hot_cursor_probe%"])
        return cursor.fetchone()[0]


@needs_postgres
def test_hot_cursor__prepares_its_statement_once_per_connection():
    for number in range(3):
        with hot_cursor() as cursor:
            cursor.execute(STATEMENT, [number])
            assert cursor.fetchone() == (number + 1,)
    assert prepared_probes() == 1


@needs_postgres
def test_hot_cursor__errors_are_djangos():
    with pytest.raises(IntegrityError), transaction.atomic(), hot_cursor() as cursor:
        cursor.execute("INSERT INTO ledger_functionrun (id) VALUES (NULL)")


def test_hot_cursor__a_logging_connection_logs_the_statement_with_its_values():
    with CaptureQueriesContext(connection) as queries, hot_cursor() as cursor:
        cursor.execute(STATEMENT, [41])
        assert cursor.fetchone() == (42,)
    assert "41" in queries[-1]["sql"]


def probe_prepared_at():
    with connection.cursor() as cursor:
        cursor.execute("SELECT prepare_time FROM pg_prepared_statements "
                       "WHERE statement LIKE %s", ["%hot_cursor_probe%"])
        return [prepared_at for (prepared_at,) in cursor.fetchall()]


def run_probe(number=1):
    with hot_cursor() as cursor:
        cursor.execute(STATEMENT, [number])
        assert cursor.fetchone() == (number + 1,)


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_hot_cursor__a_plan_is_kept_for_a_minute_then_prepared_again(monkeypatch):
    """PLANS_LIVE_A_MINUTE: a generic plan chosen while a table was tiny must not outlive it,
    so a connection's prepared statements are dropped once they are PLAN_LIFETIME_SECONDS old
    and prepared again on their next run, without an error (psycopg forgets them too)."""
    run_probe()
    [first] = probe_prepared_at()
    for number in range(5):
        run_probe(number)
    assert probe_prepared_at() == [first]  # within its lifetime: the same prepared statement
    monkeypatch.setattr("ledger.db.PLAN_LIFETIME_SECONDS", 0.0)
    run_probe()
    [again] = probe_prepared_at()
    assert again > first
    run_probe()  # psycopg knows it is prepared again: no "prepared statement does not exist"


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_hot_cursor__prepares_nothing_when_prepared_statements_are_off(monkeypatch):
    """DATABASE_PREPARED_STATEMENTS=false (behind a pooler that cannot keep them): hot_cursor
    asks to prepare every statement, and still nothing is prepared."""
    monkeypatch.setattr("ledger.db.PLAN_LIFETIME_SECONDS", 0.0)  # the minute's reset always due
    connection.ensure_connection()
    monkeypatch.setattr(connection.connection, "prepare_threshold", None)
    for number in range(7):
        run_probe(number)
    assert prepared_probes() == 0
