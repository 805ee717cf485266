"""Real database failures for tests, instead of mocks."""

import contextlib

from django.db import connection


@contextlib.contextmanager
def table_missing(model):
    """The database refuses every statement on ``model``'s table: it is renamed away for the
    block, then restored (DDL is transactional on PostgreSQL and SQLite alike)."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {table} RENAME TO {table}_away")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {table}_away RENAME TO {table}")
