"""Inserting a batch of rows that a unique constraint keeps single, and saying how many were new.

The common case is one INSERT of rows nobody else wrote (the crons run one at a time, so only a
run that died after its insert, or an operator's run beside a queued one, leaves rows behind):
its count is the batch's length, with no count query, whose plan on a table that grew since its
statistics were taken can turn each batch into a scan of the table. A conflict rolls back to a
savepoint and inserts again skipping the rows already there, counting them with ``count_rows``.
"""

from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.db.models import Model


def rows_insert_new(model: type[Model], rows: list[Model], *,
                    count_rows: Callable[[], int]) -> int:
    """Insert ``rows``; returns how many were not there yet (``count_rows`` counts the rows of
    this batch that exist, for the conflict path)."""
    if not rows:
        return 0
    try:
        with transaction.atomic():
            model.objects.bulk_create(rows)
        return len(rows)
    except IntegrityError:
        before = count_rows()
        model.objects.bulk_create(rows, ignore_conflicts=True)
        return count_rows() - before
