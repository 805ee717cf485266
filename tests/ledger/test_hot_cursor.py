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


@needs_postgres
def test_statements_that_find_rows_through_an_index_are_never_prepared():
    """A generic plan chosen while a table is small keeps reading it whole once it is large:
    the fenced updates of the hot paths are planned afresh on every run."""
    import uuid

    from ledger.run_sql import finish_in_one_statement

    for _ in range(7):  # past psycopg's and PostgreSQL's thresholds, were it ever prepared
        assert finish_in_one_statement(run_id=1, token=uuid.uuid4(), run_values={"error": "x"},
                                       attempt_id=1, attempt_values={"error": "x"}) == (
            False, False)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [statement for (statement,) in cursor.fetchall()]
    assert not [statement for statement in prepared if "UPDATE" in statement], prepared
