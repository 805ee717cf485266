"""rows_insert_new: one INSERT when the rows are new; a conflict counts only the new ones."""

from datetime import UTC, datetime

import pytest

from jobs.inserts import rows_insert_new
from jobs.models import CronLease

AT = datetime(2026, 3, 1, tzinfo=UTC)


def leases(*names):
    return [CronLease(name=name, holder="h", expires_at=AT) for name in names]


def count_of(*names):
    return CronLease.objects.filter(name__in=names).count


@pytest.mark.django_db
def test_rows_insert_new__new_rows_are_counted_by_the_batch():
    """Rows nobody wrote: all inserted, the count is the batch's length."""
    assert rows_insert_new(CronLease, leases("a", "b"), count_rows=count_of("a", "b")) == 2
    assert CronLease.objects.count() == 2


@pytest.mark.django_db
def test_rows_insert_new__rows_already_there_are_skipped_and_not_counted():
    """A batch of which one row exists: the others are inserted, and only they are counted."""
    CronLease.objects.create(name="b", holder="first", expires_at=AT)
    assert rows_insert_new(CronLease, leases("a", "b", "c"),
                           count_rows=count_of("a", "b", "c")) == 2
    assert sorted(CronLease.objects.values_list("name", "holder")) == [
        ("a", "h"), ("b", "first"), ("c", "h")]
    assert rows_insert_new(CronLease, [], count_rows=count_of()) == 0
