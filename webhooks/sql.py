"""Single-statement writes the ORM has no shape for, on PostgreSQL and SQLite alike."""

from django.db import connection


def insert_unless_present(model, values: dict, *, conflict_field: str):
    """``INSERT ... ON CONFLICT (<conflict_field>) DO NOTHING RETURNING id``: one statement and
    no savepoint. The new row's pk, or None when a row with that value exists already."""
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
