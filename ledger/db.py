"""Small SQL the ORM cannot say, shared by every app (PostgreSQL and SQLite >= 3.35 alike)."""

import time
from contextlib import contextmanager, nullcontext
from datetime import datetime
from functools import cache, lru_cache

from django.db import (
    DEFAULT_DB_ALIAS,
    InterfaceError,
    OperationalError,
    connection,
    connections,
    models,
    transaction,
)
from django.db.models import Field, Model


def select_row(model: type[Model], field_name: str, value) -> Model | None:
    """``model.objects.filter(<field_name>=value).first()`` for a unique field, as SQL built once
    per model and field: the row as Django would load it (``load_row``), or None. Django's query
    compiler cost every delivery of a run about a tenth of the worker's bookkeeping. On Django's
    cursor: a statement that finds rows is not prepared (``hot_cursor``)."""
    sql = (f"SELECT {all_columns(model)} FROM {_quote(model._meta.db_table)} "
           f"WHERE {_quote(model._meta.get_field(field_name).column)} = %s")
    with connection.cursor() as cursor:
        cursor.execute(sql, [value])
        row = cursor.fetchone()
    return None if row is None else load_row(model, row)


def all_columns(model: type[Model]) -> str:
    """Every concrete column of ``model``, quoted, in the order ``load_row`` takes them."""
    return _all_columns(model, connection.vendor)


@cache
def _all_columns(model: type[Model], vendor: str) -> str:
    return ", ".join(_quote(field.column) for field in model._meta.concrete_fields)


def load_row(model: type[Model], row) -> Model:
    """An instance of ``model`` from a row of ``all_columns(model)``, as Django's compiler loads
    it: each value through the converters it would apply (the backend's, then the field's
    ``from_db_value``: JSON, and on SQLite datetimes, UUIDs, booleans)."""
    values = list(row)
    for index, column, converters in _converters(model, connection.vendor):
        for convert in converters:
            values[index] = convert(values[index], column, connection)
    return model.from_db(connection.alias, None, values)


@cache
def _converters(model: type[Model], vendor: str) -> tuple:
    found = []
    for index, field in enumerate(model._meta.concrete_fields):
        column = field.get_col(model._meta.db_table)
        converters = (*connection.ops.get_db_converters(column),
                      *column.get_db_converters(connection))
        if converters:
            found.append((index, column, converters))
    return tuple(found)


def checking_the_connection(statement, *args, repeat: bool):
    """``statement(*args)`` (one statement), which also serves as the connection's health check.

    With ``CONN_HEALTH_CHECKS`` Django sends ``SELECT 1`` before the first statement after
    ``close_old_connections()``, which Django-Q calls before every task: a round trip of its own
    on every delivery. Here the statement is that check: when it fails because the connection
    is gone (the database restarted since), the connection is closed and, with ``repeat``, the
    statement made once more on a new one; without (a write, which may have committed before
    the connection was lost), None is returned and the caller decides again from a read."""
    if not (connection.health_check_enabled and connection.connection is not None
            and not connection.health_check_done):
        return statement(*args)
    connection.health_check_done = True
    try:
        return statement(*args)
    except (OperationalError, InterfaceError):
        if connection.is_usable():
            raise  # the statement's own failure, not a lost connection
        connection.close()
    return statement(*args) if repeat else None


def assignments_sql(model: type[Model], values: dict) -> tuple[str, list]:
    """``col = %s, ...`` for ``values`` (field names) and its parameters, each value prepared as
    its field would (``_db_value``: JSON, UUIDs, datetimes); the text built once per shape."""
    sql, fields = _assignments_plan(model, tuple(values), connection.vendor)
    return sql, [_db_value(field, as_is, values[field.name]) for field, as_is in fields]


@cache
def _assignments_plan(model: type[Model], names: tuple[str, ...], vendor: str) -> tuple[str, tuple]:
    fields = tuple(model._meta.get_field(name) for name in names)
    sql = ", ".join(f"{_quote(field.column)} = %s" for field in fields)
    return sql, tuple((field, _as_is(field, vendor)) for field in fields)


def atomic_if_nested():
    """A statement is atomic by itself in autocommit mode; inside a caller's transaction a
    savepoint keeps its failure from aborting the caller's transaction."""
    return transaction.atomic() if connection.in_atomic_block else nullcontext()


@contextmanager
def hot_cursor():
    """A cursor for a hot statement that PostgreSQL then parses and plans about once a minute per
    connection instead of on every run.

    Django binds parameters in the client (the statement travels as text with its values
    spelled out: a 1 KB webhook body as 2 KB of hex) and never prepares. This cursor binds
    them on the server and prepares the statement on its first run in each connection, so
    later runs send only the values (bytes as bytes) and skip the parse and the plan (for the
    runner's claim and finish, most of the database's CPU per delivery: docs/performance.md).
    Everything else is Django's cursor: its error wrapping (``DatabaseError``), its query log,
    its execute wrappers.

    PLANS_LIVE_A_MINUTE. After five runs PostgreSQL may keep one generic plan for a prepared
    statement, chosen from the tables as they were then, and a plan chosen while a table was
    tiny reads it whole once it is large (measured: an ``UPDATE … WHERE id IN (…)`` prepared
    this way fell to sequential scans, and a dispatch's database time grew from 0.7 to 6.6 ms
    within a minute). PostgreSQL plans again when ``ANALYZE`` (autovacuum) updates a table's
    statistics; this cursor does not rely on it: a connection's prepared statements are
    forgotten once they are ``PLAN_LIFETIME_SECONDS`` old (one ``DEALLOCATE ALL``), so a plan
    outlives the tables it was chosen for by a minute at most. What is sent here must also
    reach its rows by a unique key whatever the statistics say (``run_sql.status_is``).
    With ``DATABASE_PREPARED_STATEMENTS=false`` (settings.py) psycopg prepares nothing and the
    values are still bound on the server. SQLite, and a connection logging its queries (DEBUG,
    ``CaptureQueriesContext``: a prepared run leaves psycopg no query text for Django's log):
    Django's own cursor."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and not connection.queries_logged:
            cursor.cursor.close()
            cursor.cursor = _preparing_cursor_class()(connection.connection)
            _forget_old_plans(cursor.cursor)
        yield cursor


PLAN_LIFETIME_SECONDS = 60.0


def _forget_old_plans(cursor) -> None:
    """PLANS_LIVE_A_MINUTE: ``DEALLOCATE ALL`` once this connection's prepared statements are
    ``PLAN_LIFETIME_SECONDS`` old. psycopg recognises the command and forgets its own record of
    them (``DISCARD ALL`` and ``DEALLOCATE ALL`` reset its cache), so each is prepared again,
    with a plan for the tables as they are now, on its next run."""
    raw = connection.connection
    if raw.prepare_threshold is None:  # DATABASE_PREPARED_STATEMENTS=false: nothing prepared
        return
    now = time.monotonic()
    since = getattr(connection, "ledger_plans_since", None)
    if since is not None and since[0] is raw and now - since[1] < PLAN_LIFETIME_SECONDS:
        return
    if since is not None and since[0] is raw:
        with connection.wrap_database_errors:  # a lost connection is Django's OperationalError
            cursor.execute("DEALLOCATE ALL", prepare=False)
    connection.ledger_plans_since = (raw, now)


@cache
def _preparing_cursor_class():
    from django.db.backends.postgresql.base import ServerBindingCursor

    class PreparingCursor(ServerBindingCursor):
        def execute(self, query, params=None, *, prepare=True, binary=None):
            return super().execute(query, params, prepare=prepare, binary=binary)

    return PreparingCursor


def insert_objects(objs: list[Model]) -> None:
    """One plain ``INSERT … VALUES (…), (…) RETURNING id`` for new instances of one model; sets
    their primary keys. What ``bulk_create`` does, without its per-field machinery (on
    PostgreSQL it builds an ``UNNEST`` of typed arrays that costs more to write and to parse
    than the rows it carries): on the dispatch hot path that was a third of a request."""
    if not objs:
        return
    params = _Params()
    for obj in objs:
        params.add_row(obj)
    sql = _insert_objects_sql(type(objs[0]), len(objs), tuple(params.slots), connection.vendor)
    with hot_cursor() as cursor:
        cursor.execute(sql, params.values)
        ids = [pk for (pk,) in cursor.fetchall()]
    # PostgreSQL and SQLite return a multi-row VALUES insert's rows in order (bulk_create
    # relies on the same).
    mark_saved(objs, ids)


@lru_cache(maxsize=256)
def _insert_objects_sql(model: type[Model], count: int, slots: tuple[int, ...],
                        vendor: str) -> str:
    """STATEMENTS_BY_SHAPE: ``insert_objects``' text for ``count`` rows of ``model``."""
    marks = _marks(slots)
    width = len(_fields(model))
    rows = ", ".join(f"({', '.join(next(marks) for _ in range(width))})" for _ in range(count))
    return (f"INSERT INTO {_quote(model._meta.db_table)} ({_columns(model)}) "
            f"VALUES {rows} RETURNING {_quote(model._meta.pk.column)}")


def insert_unless_taken(head: Model, *, conflict_field: str, then: list[Model]) -> bool:
    """Insert ``head`` unless a row with its ``conflict_field`` is there already and, only when
    it did, every object of ``then`` (new instances of any models). True with every primary key
    set; False, with nothing written, when the key was taken. The unique index decides every
    race, as in ``insert_or_nothing``.

    With followers (PostgreSQL only) it is one statement: one round trip, and no ``BEGIN`` or
    ``COMMIT`` when called outside a transaction (a statement is atomic by itself). Each
    follower is ``INSERT … SELECT <values> FROM head``: it has a row only if ``head`` returned
    one, and PostgreSQL coerces its literals to the target columns as in a plain INSERT."""
    params = _Params()
    for obj in (head, *then):
        params.add_row(obj)
    sql = _unless_taken_sql((type(head), *map(type, then)), conflict_field, tuple(params.slots),
                            connection.vendor)
    with hot_cursor() as cursor:
        cursor.execute(sql, params.values)
        row = cursor.fetchone()
    if row is None or row[0] is None:
        return False
    mark_saved([head, *then], list(row))
    return True


@lru_cache(maxsize=256)
def _unless_taken_sql(model_types: tuple[type[Model], ...], conflict_field: str,
                      slots: tuple[int, ...], vendor: str) -> str:
    """STATEMENTS_BY_SHAPE: ``insert_unless_taken``'s text for a head of ``model_types[0]``
    and followers of the others."""
    marks = _marks(slots)
    head, *followers = model_types
    meta = head._meta
    insert_head = (
        f"INSERT INTO {_quote(meta.db_table)} ({_columns(head)}) "
        f"VALUES ({', '.join(next(marks) for _ in _fields(head))}) "
        f"ON CONFLICT ({_quote(meta.get_field(conflict_field).column)}) DO NOTHING "
        f"RETURNING {_quote(meta.pk.column)}"
    )
    if not followers:
        return insert_head
    parts = [f"head AS ({insert_head})"]
    for number, model in enumerate(followers):
        values = ", ".join(next(marks) for _ in _fields(model))
        parts.append(f"f{number} AS ({_select_insert(model, values, 'head')})")
    selected = ", ".join(f"(SELECT * FROM {name})"
                         for name in ["head", *(f"f{n}" for n in range(len(followers)))])
    return f"WITH {', '.join(parts)} SELECT {selected}"


# STATEMENTS_BY_SHAPE. A dispatch sends the same statement every time but for its values, so
# its text is built once per shape and kept (``lru_cache``): the models it writes, and which of
# their columns share a parameter or are NULL (``_Params.slots``, which the values decide).
# Built on every dispatch, it was 0.24 M of a new window's 4.6 M instructions in the web
# process (callgrind, docs/performance.md). Only the values are worked out per call.


def _marks(slots: tuple[int, ...]):
    """Each column's placeholder in turn: its named parameter, or NULL."""
    return iter("NULL" if number < 0 else f"%(p{number})s" for number in slots)


def insert_select_sql(obj: Model, *, source: str,
                      from_source: dict[str, str] | None = None) -> tuple[str, list]:
    """``INSERT INTO <obj's table> (…) SELECT <obj's values> FROM <source> RETURNING id`` and its
    positional parameters: ``obj`` (a new instance) is written once per row of ``source`` (a
    CTE of the caller's statement), so only if that row exists. ``from_source`` names fields
    whose value is a column of ``source`` instead of ``obj``'s (a value the statement itself
    computes, such as a time read from the database's clock)."""
    params = []
    from_source = from_source or {}

    def value_sql(field: Field, value) -> str:
        if field.name in from_source:
            return f"{source}.{_quote(from_source[field.name])}"
        if value is None:
            return "NULL"
        params.append(value)
        return "%s"

    values = ", ".join(value_sql(field, value) for field, (value, _) in
                       zip(_fields(type(obj)), _db_values(obj), strict=True))
    return _select_insert(type(obj), values, source), params


def _select_insert(model: type[Model], values: str, source: str) -> str:
    return (f"INSERT INTO {_quote(model._meta.db_table)} ({_columns(model)}) "
            f"SELECT {values} FROM {source} RETURNING {_quote(model._meta.pk.column)}")


class _Params:
    """A statement's named parameters, one per distinct value and column type.

    The rows of one dispatch repeat their keys, timestamps and flags: each is bound once. A
    value is shared only between columns of one SQL type (``_sql_type``): PostgreSQL deduces
    the type of a parameter bound on the server from where it is used, and refuses one used as
    ``varchar`` in one place and ``text`` in another. NULL is written as such.

    A JSON value is not shared: Django wraps it for each column in a new psycopg wrapper, equal
    only to itself (sharing one dict's wrapper by what it wraps saved the database three small
    parses per dispatch and cost the web process more instructions than that: tried,
    callgrind).

    ``slots`` says, column by column, which parameter each takes (-1: NULL): with the models
    written, it decides the statement's text (STATEMENTS_BY_SHAPE)."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}
        self.slots: list[int] = []
        self._numbers: dict[object, int] = {}

    def add_row(self, obj: Model) -> None:
        """``obj``'s non-primary-key columns, in ``_columns`` order."""
        self.add(_db_values(obj))

    def add(self, columns) -> None:
        """Columns' (value, SQL type): each one's parameter number appended to ``slots``."""
        numbers, slots = self._numbers, self.slots
        for value, sql_type in columns:
            if value is None:
                slots.append(-1)
                continue
            try:
                key = (type(value), value, sql_type)  # 0, False and 0.0 stay apart
                number = numbers.get(key)
            except TypeError:  # unhashable: never shared
                key = id(value)
                number = numbers.get(key)
            if number is None:
                number = numbers[key] = len(numbers)
                self.values[f"p{number}"] = value
            slots.append(number)

    def placeholder(self, value, sql_type: str = "") -> str:
        """One more column's placeholder: its named parameter, or NULL."""
        self.add([(value, sql_type)])
        number = self.slots[-1]
        return "NULL" if number < 0 else f"%(p{number})s"


def _db_values(obj: Model) -> list[tuple[object, str]]:
    """For each column, what ``field.get_db_prep_save(field.pre_save(obj, True))`` gives (without
    the calls where they only check and return the value: ``_db_value``; read plainly for a
    field that does not change it on save), and the column's SQL type."""
    wrapper = connections[DEFAULT_DB_ALIAS]  # ``connection`` is a proxy: resolved once here
    return [(_db_value(field, as_is, getattr(obj, field.attname) if plain_read
                       else field.pre_save(obj, True), wrapper), sql_type)
            for field, plain_read, as_is, sql_type in _plan(type(obj), wrapper.vendor)]


def _db_value(field: Field, as_is: tuple[type, ...], value, wrapper=connection):
    """``field.get_db_prep_save(value)``, skipped where it only checks and returns the value
    (``as_is``, from ``_as_is``): those calls were a fifth of a dispatch's Python and an eighth
    of an ingest's."""
    if value is None:
        return value
    kind = type(value)
    if kind in as_is and (kind is not datetime or value.tzinfo):
        return value
    return field.get_db_prep_save(value, wrapper)


def _as_is(field: Field, vendor: str) -> tuple[type, ...]:
    """The value types ``field`` sends to the database unchanged: a plain ``str`` in a text
    column, a ``bool`` in a boolean one, an ``int`` in an integer one, and on PostgreSQL an
    aware ``datetime`` (which psycopg adapts itself; a naive one still goes through Django,
    which warns). Only Django's own field classes: a subclass may prepare values its own way."""
    if type(field) in (models.CharField, models.TextField):
        return (str,)
    if type(field) is models.BooleanField:
        return (bool,)
    if type(field) in (models.IntegerField, models.PositiveIntegerField,
                       models.SmallIntegerField, models.PositiveSmallIntegerField,
                       models.BigIntegerField, models.PositiveBigIntegerField):
        return (int,)
    if type(field) is models.DateTimeField and vendor == "postgresql":
        return (datetime,)
    return ()


@cache
def _plan(model: type[Model], vendor: str) -> tuple:
    return tuple((field, _reads_plainly(field), _as_is(field, vendor), _sql_type(field))
                 for field in _fields(model))


def _reads_plainly(field: Field) -> bool:
    """Whether ``field.pre_save(obj, True)`` only reads ``obj``'s attribute: Django's own
    ``pre_save``, or a date field's without ``auto_now`` or ``auto_now_add``."""
    pre_save = type(field).pre_save
    return pre_save is Field.pre_save or (
        pre_save in (models.DateField.pre_save, models.DateTimeField.pre_save)
        and not field.auto_now and not field.auto_now_add)


def _sql_type(field: Field) -> str:
    """The column's type without its modifier: ``varchar(255)`` and ``varchar(64)`` are one type
    to PostgreSQL's parameter typing, ``varchar`` and ``text`` are two."""
    return (field.db_type(connection) or "").split("(")[0]


@cache
def _fields(model: type[Model]) -> tuple:
    return tuple(field for field in model._meta.concrete_fields if not field.primary_key)


@cache
def _columns(model: type[Model]) -> str:
    return ", ".join(_quote(field.column) for field in _fields(model))


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


def mark_saved(objs: list[Model], ids: list[int]) -> None:
    """New instances now stored under ``ids``: as Django's own ``save()`` leaves them."""
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
    params = [_db_value(field, as_is, values[field.name]) for field, as_is in fields]
    with hot_cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return row[0] if row else None


@cache
def _insert_or_nothing_sql(model: type[Model], names: tuple[str, ...], conflict_field: str,
                           vendor: str) -> tuple[str, tuple]:
    """The statement and its fields (each with its ``_as_is`` types), built once per shape (hot
    path: every ingest)."""
    meta = model._meta
    fields = tuple(meta.get_field(name) for name in names)
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
        f"ON CONFLICT ({quote(meta.get_field(conflict_field).column)}) DO NOTHING "
        f"RETURNING {quote(meta.pk.column)}"
    )
    return sql, tuple((field, _as_is(field, vendor)) for field in fields)
