"""The runner's two hot statements, written as raw SQL so each is one round trip.

- ``claim_update``: the claim's compare-and-set ``queued -> running``, with the idempotency check
  folded in (``NOT EXISTS`` a success of the same key), so the common claim needs no separate
  read, and the new attempt's row: on PostgreSQL in the same statement (``INSERT … SELECT …
  FROM`` the claimed row), on SQLite right after it. On PostgreSQL its ``RETURNING`` also turns
  ``synchronous_commit`` off for the rest of the claim's transaction, only when the row matched
  (``ASYNCHRONOUS_CLAIM_COMMIT`` in ``claims.py`` says why that is safe), saving the separate
  ``SET LOCAL``.
- ``finish_in_one_statement`` (PostgreSQL): the fenced finish, the attempt's outcome and the
  slot's release as one statement (data-modifying CTEs), atomic by itself, so a finish costs one
  round trip and no BEGIN/COMMIT. SQLite has no data-modifying CTEs: ``claims`` finishes there in
  a transaction of three statements.

Only columns named here are written, so a column added to the models later keeps its default.
"""

from django.db import connection

from ledger.db import (
    assignments_sql,
    atomic_if_nested,
    insert_objects,
    insert_select_sql,
    mark_saved,
)
from ledger.models import ConcurrencySlot, FunctionAttempt, FunctionRun

RUN = FunctionRun._meta.db_table
ATTEMPT = FunctionAttempt._meta.db_table
SLOT = ConcurrencySlot._meta.db_table


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
    sql = (
        f"UPDATE {RUN} SET attempt = attempt + 1, started_at = COALESCE(started_at, %s), "
        f"{assignments} "
        f"WHERE id = %s AND status = 'queued' AND attempt = %s "
        f"AND (next_attempt_at IS NULL OR next_attempt_at <= %s)"
    )
    params = [_datetime(now), *params, run.pk, run.attempt, _datetime(now)]
    if run.idempotency_key:
        sql += (
            f' AND NOT EXISTS (SELECT 1 FROM {RUN} done WHERE done."function" = %s '
            f"AND done.idempotency_key = %s AND done.status = 'succeeded' AND done.id <> %s)"
        )
        params += [run.function, run.idempotency_key, run.pk]
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            if cursor.rowcount != 1:
                return False
        insert_objects([attempt])
        return True
    # Evaluated only for a matched row: a claim that did not match keeps a durable commit.
    sql += " RETURNING set_config('synchronous_commit', 'off', true)"
    insert, insert_params = insert_select_sql(attempt, source="claimed")
    with connection.cursor() as cursor:
        cursor.execute(f"WITH claimed AS ({sql}) {insert}", [*params, *insert_params])
        row = cursor.fetchone()
    if row is None:
        return False
    mark_saved([attempt], [row[0]])
    return True


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
        f"UPDATE {RUN} SET {run_set} WHERE id = %s AND claim_token = %s AND status = 'running' "
        f"RETURNING id), "
        f"attempt_done AS (UPDATE {ATTEMPT} SET {attempt_set} "
        f"WHERE id = %s AND EXISTS (SELECT 1 FROM finished)), "
        f"released AS (DELETE FROM {SLOT} WHERE run_id IN (SELECT id FROM finished) "
        f"RETURNING waiters) "
        f"SELECT (SELECT count(*) FROM finished), "
        f"COALESCE((SELECT bool_or(waiters) FROM released), false)"
    )
    params = [*run_params, run_id, token, *attempt_params, attempt_id]
    with atomic_if_nested(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        finished, waiters = cursor.fetchone()
    return bool(finished), bool(waiters)


def _datetime(value):
    return connection.ops.adapt_datetimefield_value(value)
