"""Small SQL the ORM cannot say, shared by every app (PostgreSQL and SQLite >= 3.35 alike)."""

from functools import cache

from django.db import connection
from django.db.models import Model


def commit_without_waiting_for_disk() -> None:
    """PostgreSQL: the current transaction's COMMIT returns before its WAL reaches the disk
    (``SET LOCAL``: it ends with the transaction). Only for writes whose loss in a database crash
    is repaired by someone else; the caller says who in a comment. No-op on SQLite."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")


def insert_objects(objs: list[Model]) -> None:
    """One plain ``INSERT … VALUES (…), (…) RETURNING id`` for new instances of one model; sets
    their primary keys. What ``bulk_create`` does, without its per-field machinery (on
    PostgreSQL it builds an ``UNNEST`` of typed arrays that costs more to write and to parse
    than the rows it carries): on the dispatch hot path that was a third of a request."""
    if not objs:
        return
    meta = objs[0]._meta
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    quote = connection.ops.quote_name
    rows, params = [], []
    for obj in objs:
        values = [field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields]
        # NULL written as such: fewer parameters keeps the statement under psycopg's limit for
        # caching its parsed form (50), instead of re-parsing it on every dispatch.
        rows.append(f"({', '.join('NULL' if value is None else '%s' for value in values)})")
        params.extend(value for value in values if value is not None)
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES {', '.join(rows)} RETURNING {quote(meta.pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ids = [pk for (pk,) in cursor.fetchall()]
    # PostgreSQL and SQLite return a multi-row VALUES insert's rows in order (bulk_create
    # relies on the same).
    for obj, pk in zip(objs, ids, strict=True):
        obj.pk = pk
        obj._state.adding = False
        obj._state.db = connection.alias


def insert_or_nothing(model: type[Model], values: dict, *, conflict_field: str) -> int | None:
    """``INSERT … ON CONFLICT (conflict_field) DO NOTHING RETURNING id``.

    The new row's primary key, or None when a row with that key exists already. The database's
    unique index decides every race; nothing is read first, no exception is raised and no
    transaction is aborted (a failed plain INSERT would also write an ERROR line to the
    PostgreSQL log for every duplicate)."""
    sql, fields = _insert_or_nothing_sql(model, tuple(values), conflict_field, connection.vendor)
    params = [field.get_db_prep_save(values[field.name], connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else None


@cache
def _insert_or_nothing_sql(model: type[Model], names: tuple[str, ...], conflict_field: str,
                           vendor: str) -> tuple[str, tuple]:
    """The statement and its fields, built once per shape (hot path: every dispatch and ingest)."""
    meta = model._meta
    fields = tuple(meta.get_field(name) for name in names)
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({quote(meta.get_field(conflict_field).column)}) DO NOTHING "
        f"RETURNING {quote(meta.pk.column)}"
    )
    return sql, fields
