"""Small SQL the ORM cannot say, shared by every app (PostgreSQL and SQLite >= 3.35 alike)."""

from django.db import connection
from django.db.models import Model


def insert_or_nothing(model: type[Model], values: dict, *, conflict_field: str) -> int | None:
    """``INSERT … ON CONFLICT (conflict_field) DO NOTHING RETURNING id``.

    The new row's primary key, or None when a row with that key exists already. The database's
    unique index decides every race; nothing is read first, no exception is raised and no
    transaction is aborted (a failed plain INSERT would also write an ERROR line to the
    PostgreSQL log for every duplicate)."""
    meta = model._meta
    fields = [meta.get_field(name) for name in values]
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({quote(meta.get_field(conflict_field).column)}) DO NOTHING "
        f"RETURNING {quote(meta.pk.column)}"
    )
    params = [field.get_db_prep_save(values[field.name], connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else None
