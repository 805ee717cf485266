"""The runner's hot statements, written as raw SQL so each is one round trip.

- ``claim_at_once`` (PostgreSQL): the uncontended claim as one statement with no read before
  it: concurrency slot 0, the compare-and-set ``queued -> running`` and the attempt's row,
  atomic by itself, the claimed row returned. Anything else (slot 0 held, not due, a duplicate)
  takes the transaction path below, after a read.
- ``claim_update``: the claim's compare-and-set ``queued -> running`` inside the transaction
  that took a slot, with the idempotency check folded in (``NOT EXISTS`` a success of the same
  key), so the common claim needs no separate read, and the new attempt's row: on PostgreSQL in
  the same statement (``INSERT … SELECT … FROM`` the claimed row), on SQLite right after it.
- On PostgreSQL a claim's ``RETURNING`` also turns ``synchronous_commit`` off for its
  transaction, only when the row matched (``ASYNCHRONOUS_CLAIM_COMMIT`` in ``claims.py`` says
  why that is safe), saving the separate ``SET LOCAL``.
- ``finish_in_one_statement`` (PostgreSQL): the fenced finish, the attempt's outcome and the
  slot's release as one statement (data-modifying CTEs), atomic by itself, so a finish costs one
  round trip and no BEGIN/COMMIT. SQLite has no data-modifying CTEs: ``claims`` finishes there in
  a transaction of three statements.

On PostgreSQL the three are prepared (``ledger.db.hot_cursor``): parsing and planning them was
most of the database's CPU per delivery. Each reaches its run by a unique key (``id``, ``task_id``)
whatever the statistics say (``status_is``), so a generic plan is the plan a fresh one would be,
and a plan lives a minute at most (PLANS_LIVE_A_MINUTE in ``ledger.db``).

Only columns named here are written, so a column added to the models later keeps its default.
"""

from functools import cache

from django.db import connection

from ledger.db import (
    all_columns,
    assignments_sql,
    atomic_if_nested,
    hot_cursor,
    insert_objects,
    insert_select_sql,
    load_row,
    mark_saved,
)
from ledger.models import ConcurrencySlot, FunctionAttempt, FunctionRun

RUN = FunctionRun._meta.db_table
ATTEMPT = FunctionAttempt._meta.db_table
SLOT = ConcurrencySlot._meta.db_table


def status_is(status: str) -> str:
    """``<run table>.status = '<status>'`` for a statement that reaches its run by a unique key (id,
    task id), written so that PostgreSQL cannot answer it from an index on the status instead.

    Analyzed while a ledger was quiet, the statistics say ``queued`` and ``running`` are rare,
    and PostgreSQL then found the run among *all* queued or running runs through the partial
    index ``ledger_run_active``, filtering on the key: with a backlog after an outage (when the
    workers must drain fastest) a delivery went from 2.5 to 25 ms at 20,000 queued, and grew
    with the backlog. ``status || ''`` is the same test, but not the indexed expression, so no
    index predicate on ``status`` is implied by it and the unique key's index is the only way
    in (tests/ledger/test_claim_one_statement.py)."""
    return f"{RUN}.status || '' = '{status}'"


def claim_update(*, run: FunctionRun, values: dict, now, attempt: FunctionAttempt) -> bool:
    """Claim ``run`` as read by the caller; True when the row matched and is now ``values``, and
    ``attempt`` (a new instance, numbered ``run.attempt + 1``) is written, its primary key set.

    Matches only while the run is still queued with the attempt number read and due by ``now``
    (so nothing changed since the read) and, for a run with an idempotency key, while no other
    run of the same function and key has succeeded (a lookup in the partial unique index). It
    bumps ``attempt`` and sets ``started_at`` on the first attempt. False tells the caller only
    that it did not match (nothing written): it reads the run again and decides why on its slow
    path. Call it inside the claim's transaction."""
    assignments, params = assignments_sql(FunctionRun, values)
    claimable, claimable_params = _claimable(run, now)
    sql = (
        f"UPDATE {RUN} SET attempt = attempt + 1, started_at = COALESCE(started_at, %s), "
        f"{assignments} WHERE {claimable}"
    )
    params = [_datetime(now), *params, *claimable_params]
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            if cursor.rowcount != 1:
                return False
        insert_objects([attempt])
        return True
    # Evaluated only for a matched row: a claim that did not match keeps a durable commit.
    sql += f" RETURNING {ASYNCHRONOUS_COMMIT}"
    insert, insert_params = insert_select_sql(attempt, source="claimed")
    with hot_cursor() as cursor:
        cursor.execute(f"WITH claimed AS ({sql}) {insert}", [*params, *insert_params])
        row = cursor.fetchone()
    if row is None:
        return False
    mark_saved([attempt], [row[0]])
    return True


def claim_at_once(*, column: str, value, function: str, values: dict, now,
                  attempt: FunctionAttempt) -> FunctionRun | None:
    """PostgreSQL: a whole uncontended claim as one statement, atomic by itself, with no read
    before it: the run whose ``column`` (``id`` or ``task_id``) is ``value``, of ``function``.

    One round trip where a read and the transaction of ``claim_update`` take five (the read,
    ``BEGIN``, the slot, the claim, ``COMMIT``). Concurrency slot 0 is inserted (``ON CONFLICT
    DO NOTHING``: held, or the run holds a slot already) only while the run is claimable (queued,
    due, and no other run of its function and idempotency key has succeeded), then the run is
    claimed (``values``, the attempt bumped) under the same conditions and ``attempt`` written
    (its run, number and start taken from the claimed row). Returns the claimed run as stored,
    with ``attempt`` saved; None when nothing was claimed, for the caller to read the run and
    decide on the transaction path, which also tries the other slots, takes over stale ones and
    marks held ones as waited for.

    The start is the later of ``now`` and the database's clock read after the slot's INSERT
    returned: the INSERT may have waited for the previous holder's uncommitted release, and an
    attempt must not be recorded as started before that finish (the ledger would show two
    attempts of a limit-1 function overlapping). ``values`` must not set ``heartbeat_at``: the
    statement sets it to the start.

    The slot's INSERT checks that the run is claimable; the claim checks again what another
    transaction may have changed since the statement's snapshot (``STILL_CLAIMABLE``: PostgreSQL
    re-evaluates it on the row's latest version once it holds the row's lock); it names the row
    by ``column`` too, so that it is found through that unique index (joined only to the slot's
    row, PostgreSQL scanned every queued run). When a
    transaction that does not take slots (an operator's cancel) changes the run between the
    two, the slot stays without a running run: stale, so the next claimant of that slot number
    deletes it and takes it (``slots.slot_acquire``), as it does a dead worker's."""
    claimable, claimable_params = _claimable_now(column, value, function, now)
    assignments, params = assignments_sql(FunctionRun, values)
    insert, insert_params = insert_select_sql(
        attempt, source="claimed",
        from_source={"run": "id", "number": "attempt", "started_at": "heartbeat_at"})
    # Outside a caller's transaction the statement is its own transaction and may commit without
    # waiting for the disk; inside one the setting would reach the caller's commit.
    asynchronous = "" if connection.in_atomic_block else f", {ASYNCHRONOUS_COMMIT}"
    sql = (
        f'WITH slot AS (INSERT INTO {SLOT} ("function", "key", slot, run_id, acquired_at, waiters) '
        f'SELECT {RUN}."function", {RUN}.concurrency_key, 0, {RUN}.id, %s, false FROM {RUN} '
        f"WHERE {claimable} ON CONFLICT DO NOTHING RETURNING run_id), "
        f"started AS (SELECT GREATEST(%s::timestamptz, clock_timestamp()) AS at, run_id "
        f"FROM slot), "
        f"claimed AS (UPDATE {RUN} SET attempt = {RUN}.attempt + 1, "
        f"started_at = COALESCE({RUN}.started_at, started.at), heartbeat_at = started.at, "
        f"{assignments} FROM started WHERE {RUN}.{column} = %s AND {RUN}.id = started.run_id "
        f"AND {STILL_CLAIMABLE} "
        f"RETURNING {_run_columns()}{asynchronous}), "
        f"attempt_row AS ({insert}) "
        f"SELECT (SELECT id FROM attempt_row), claimed.* FROM claimed"
    )
    all_params = [_datetime(now), *claimable_params, _datetime(now), *params, value,
                  _datetime(now), *insert_params]
    with atomic_if_nested(), hot_cursor() as cursor:
        cursor.execute(sql, all_params)
        row = cursor.fetchone()
    if row is None:
        return None
    run = load_row(FunctionRun, row[1:1 + len(FunctionRun._meta.concrete_fields)])
    attempt.run = run
    attempt.number = run.attempt
    attempt.started_at = run.heartbeat_at
    mark_saved([attempt], [row[0]])
    return run


@cache
def _run_columns() -> str:
    """The run's columns, qualified (the claim's ``UPDATE`` joins another relation)."""
    return ", ".join(f"{RUN}.{column.strip()}" for column in all_columns(FunctionRun).split(","))


# What the claim's UPDATE checks again on the row it locks: the row's status and due time may
# have changed since the statement's snapshot (a cancel, a finish queuing the next attempt).
# Its function never changes, and a success of the same idempotency key committed since the
# snapshot is refused by the partial unique index when this run finishes (recorded skipped).
STILL_CLAIMABLE = (f"{status_is('queued')} "
                   f"AND ({RUN}.next_attempt_at IS NULL OR {RUN}.next_attempt_at <= %s)")


def _claimable_now(column: str, value, function: str, now) -> tuple[str, list]:
    """The run's row (by ``column``) while it is queued, of ``function``, due by ``now`` and, with
    an idempotency key, while no other run of its function and key has succeeded. The repeated
    ``<> ''`` lets that lookup use the partial unique index of successes (its predicate must be
    implied by the query's; without it, every claim read the whole table)."""
    sql = (f"{RUN}.{column} = %s AND {RUN}.\"function\" = %s AND {status_is('queued')} "
           f"AND ({RUN}.next_attempt_at IS NULL OR {RUN}.next_attempt_at <= %s) "
           f"AND ({RUN}.idempotency_key = '' OR NOT EXISTS (SELECT 1 FROM {RUN} done "
           f'WHERE done."function" = {RUN}."function" '
           f"AND done.idempotency_key = {RUN}.idempotency_key AND done.idempotency_key <> '' "
           f"AND done.status = 'succeeded' AND done.id <> {RUN}.id))")
    return sql, [value, function, _datetime(now)]


def _claimable(run: FunctionRun, now) -> tuple[str, list]:
    """The run's row while it is as the caller read it (queued, same attempt), due by ``now``,
    and, with an idempotency key, while no other run of its function and key has succeeded."""
    sql = (f"id = %s AND {status_is('queued')} AND attempt = %s "
           "AND (next_attempt_at IS NULL OR next_attempt_at <= %s)")
    params = [run.pk, run.attempt, _datetime(now)]
    if run.idempotency_key:
        sql += (
            f' AND NOT EXISTS (SELECT 1 FROM {RUN} done WHERE done."function" = %s '
            f"AND done.idempotency_key = %s AND done.status = 'succeeded' AND done.id <> %s)"
        )
        params += [run.function, run.idempotency_key, run.pk]
    return sql, params


# Turns synchronous_commit off for the statement's transaction, only for a row that matched
# (``ASYNCHRONOUS_CLAIM_COMMIT`` in ``claims.py`` says why a claim may).
ASYNCHRONOUS_COMMIT = "set_config('synchronous_commit', 'off', true)"


def finish_in_one_statement(*, run_id: int, token, run_values: dict, attempt_id: int,
                            attempt_values: dict) -> tuple[bool, bool]:
    """PostgreSQL: the fenced finish as one statement. Returns (finished, slot_waiters).

    ``finished`` is False when the claim token is no longer the run's (taken back): then nothing
    is written. The attempt and the slot are touched only through the run's CTE, so the run row
    is locked first, as the take-back does (the two never deadlock). Raises IntegrityError, with
    nothing written, when a success collides with another success of the same idempotency key.
    """
    run_set, run_params = assignments_sql(FunctionRun, run_values)
    attempt_set, attempt_params = assignments_sql(FunctionAttempt, attempt_values)
    sql = (
        f"WITH finished AS ("
        f"UPDATE {RUN} SET {run_set} WHERE id = %s AND claim_token = %s "
        f"AND {status_is('running')} "
        f"RETURNING id), "
        f"attempt_done AS (UPDATE {ATTEMPT} SET {attempt_set} "
        f"WHERE id = %s AND EXISTS (SELECT 1 FROM finished)), "
        f"released AS (DELETE FROM {SLOT} WHERE run_id IN (SELECT id FROM finished) "
        f"RETURNING waiters) "
        f"SELECT (SELECT count(*) FROM finished), "
        f"COALESCE((SELECT bool_or(waiters) FROM released), false)"
    )
    params = [*run_params, run_id, token, *attempt_params, attempt_id]
    with atomic_if_nested(), hot_cursor() as cursor:
        cursor.execute(sql, params)
        finished, waiters = cursor.fetchone()
    return bool(finished), bool(waiters)


def _datetime(value):
    return connection.ops.adapt_datetimefield_value(value)
