"""A new window in one statement on PostgreSQL: ``ledger.db.insert_unless_taken``, the broker
rows ``async_task`` would write (``ledger.enqueue.QueueRows``), runs delivered by task id."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.signing import SignedPackage

from cron.models import DispatchWindow, WindowStatus
from ledger.db import _Params, _unless_taken_sql, insert_objects, insert_unless_taken
from ledger.enqueue import QueueRows, broker_is_transactional, enqueue_run
from ledger.models import FunctionRun, RunStatus
from ledger.runner import execute_run
from ledger.services import Overlap, RunRequest, function_runs_create_with
from tests.conftest import on_postgres
from tests.ledger.helpers import attempts, fresh, run_create

pytestmark = pytest.mark.django_db

needs_postgres = pytest.mark.skipif(
    not on_postgres(), reason="data-modifying CTEs are PostgreSQL's; SQLite takes the "
                              "transaction path, tested below and by every dispatch test")


def window(key: str = "k:1") -> DispatchWindow:
    now = timezone.now()
    return DispatchWindow(dispatch_key=key, cron="t-cron", window_start=now, window_seconds=60,
                          params={}, status=WindowStatus.ENQUEUED, source="command",
                          correlation_id="c", requested_at=now, task_ids=["a:1"],
                          created_at=now, updated_at=now)


def run(task_id: str) -> FunctionRun:
    return FunctionRun(function="t-ok", task_id=task_id, source="command", payload={"x": [1]},
                       params={}, overlap=Overlap.ALLOW_ALL.value, max_attempts=1,
                       queued_at=timezone.now())


@needs_postgres
def test_insert_unless_taken__new_key__head_and_followers_in_one_statement():
    head, runs = window(), [run("a:1"), run("b:1")]
    with CaptureQueriesContext(connection) as queries:
        assert insert_unless_taken(head, conflict_field="dispatch_key", then=runs) is True
    assert len(queries) == 1
    assert DispatchWindow.objects.get(pk=head.pk).dispatch_key == "k:1"
    stored = {r.task_id: r for r in FunctionRun.objects.filter(pk__in=[r.pk for r in runs])}
    assert [stored[r.task_id].pk for r in runs] == [r.pk for r in runs]
    assert stored["a:1"].payload == {"x": [1]} and stored["a:1"].finished_at is None
    assert not runs[0]._state.adding


@needs_postgres
def test_insert_unless_taken__taken_key__writes_nothing_and_says_so():
    assert insert_unless_taken(window(), conflict_field="dispatch_key", then=[run("a:1")])
    late = [run("a:2")]
    assert insert_unless_taken(window(), conflict_field="dispatch_key", then=late) is False
    assert late[0].pk is None
    assert DispatchWindow.objects.count() == 1
    assert not FunctionRun.objects.filter(task_id="a:2").exists()


def test_insert_unless_taken__no_followers__a_plain_insert_on_either_database():
    first = window()
    assert insert_unless_taken(first, conflict_field="dispatch_key", then=[]) is True
    assert insert_unless_taken(window(), conflict_field="dispatch_key", then=[]) is False
    assert DispatchWindow.objects.get().pk == first.pk


@needs_postgres
def test_insert_unless_taken__text_built_once_per_shape_and_each_row_keeps_its_values():
    _unless_taken_sql.cache_clear()
    first, second = window("k:1"), window("k:2")
    second.correlation_id = "c-2"
    assert insert_unless_taken(first, conflict_field="dispatch_key", then=[run("a:1")])
    assert insert_unless_taken(second, conflict_field="dispatch_key", then=[run("a:2")])
    assert _unless_taken_sql.cache_info().misses == 1  # same shape: the text built once
    late = run("a:3")
    late.next_attempt_at = timezone.now()  # a NULL column given a value: another shape
    assert insert_unless_taken(window("k:3"), conflict_field="dispatch_key", then=[late])
    assert _unless_taken_sql.cache_info().misses == 2
    assert DispatchWindow.objects.get(dispatch_key="k:2").correlation_id == "c-2"
    assert FunctionRun.objects.get(task_id="a:2").payload == {"x": [1]}
    assert FunctionRun.objects.get(task_id="a:1").next_attempt_at is None
    assert FunctionRun.objects.get(task_id="a:3").next_attempt_at == late.next_attempt_at


def test_insert_objects__rows_of_one_statement_keep_their_own_values():
    runs = [run("o:1"), run("o:2")]
    runs[1].next_attempt_at, runs[1].payload = timezone.now(), {"y": 2}
    insert_objects(runs)
    first, second = (FunctionRun.objects.get(pk=r.pk) for r in runs)
    assert (first.task_id, first.payload, first.next_attempt_at) == ("o:1", {"x": [1]}, None)
    assert (second.task_id, second.payload, second.next_attempt_at) == (
        "o:2", {"y": 2}, runs[1].next_attempt_at)


def test_params__equal_values_named_once_but_0_false_and_json_kept_apart():
    params = _Params()
    now = timezone.now()
    names = [params.placeholder(value) for value in
             (now, now, "x", "x", 0, False, 0.0, None, {"a": 1}, {"a": 1})]
    assert names[0] == names[1] and names[2] == names[3]
    assert len({names[4], names[5], names[6]}) == 3
    assert names[7] == "NULL"
    assert names[8] != names[9]
    assert len(params.values) == 7
    # One value in columns of two SQL types gets two names (PostgreSQL types each parameter).
    assert params.placeholder("x", "varchar") != params.placeholder("x", "text")
    assert params.placeholder("x", "varchar") == params.placeholder("x", "varchar")


@pytest.mark.skipif(not broker_is_transactional(),
                    reason="compares with the ORM broker's own row; .ci/run runs it there")
def test_queue_rows__the_row_the_orm_broker_would_write():
    rows = QueueRows()
    enqueue_run("t:1", function="t-ok", task_name="t:1", timeout_seconds=30, into=rows)
    enqueue_run("t:1", function="t-ok", task_name="t:1", timeout_seconds=30)
    (ours,) = rows.rows
    real = OrmQ.objects.get()
    assert ours.pk is None and ours.key == real.key == Conf.CLUSTER_NAME
    assert abs(ours.lock - real.lock) < timedelta(seconds=5)
    ours_task, real_task = SignedPackage.loads(ours.payload), SignedPackage.loads(real.payload)
    for task in (ours_task, real_task):
        assert task.pop("id") and task.pop("started")
    assert ours_task == real_task
    assert ours_task["args"] == ("t:1", "t-ok")
    assert ours_task["func"] == "ledger.tasks.execute_run"


@pytest.mark.parametrize("function", ["t-ok", None], ids=["with its function", "without"])
@pytest.mark.parametrize("by", ["task id", "primary key"])
def test_execute_run__delivered_by_task_id_or_primary_key(by, function):
    """With or without the function named in the task (tasks queued before it was sent)."""
    queued = run_create("t-ok", task_id="t-ok:by")
    ended = execute_run(queued.task_id if by == "task id" else queued.pk, function=function)
    assert ended.pk == queued.pk and fresh(queued).status == RunStatus.SUCCEEDED
    assert len(attempts(queued)) == 1
    execute_run(queued.task_id, function=function)  # a second delivery claims nothing
    assert fresh(queued).status == RunStatus.SUCCEEDED and len(attempts(queued)) == 1
    assert execute_run("no-such-task", function=function) is None


def test_runs_create_with__runs_sent_by_task_id_and_stamped_sent_on_the_orm_broker(
        make_function):
    make_function("t-with")
    head = window("k:with")
    requests = [RunRequest(function="t-with", payload={}, source="command", task_id="w:1",
                           dispatch_key="k:with")]
    runs = function_runs_create_with(head=head, unique_field="dispatch_key", requests=requests,
                                     now=timezone.now())
    assert [fresh(r).task_id for r in runs] == ["w:1"] and head.pk
    if broker_is_transactional():
        (row,) = OrmQ.objects.all()
        assert SignedPackage.loads(row.payload)["args"] == ("w:1", "t-with")
        assert fresh(runs[0]).enqueued_at is not None
    assert function_runs_create_with(head=window("k:with"), unique_field="dispatch_key",
                                     requests=requests, now=timezone.now()) is None


@pytest.mark.parametrize("name, value", [
    ("function", "t-ok"), ("inline", True), ("attempt", 3), ("queued_at", "now"),
    ("payload", {"a": [1]}), ("status", RunStatus.QUEUED)])
def test_db_value__same_as_djangos_preparation(name, value):
    """``_db_value`` skips Django's per-field preparation only where it returns the value as
    it is: what reaches the driver is the same either way."""
    from ledger.db import _as_is, _db_value

    field = FunctionRun._meta.get_field(name)
    value = timezone.now() if value == "now" else value
    ours = _db_value(field, _as_is(field, connection.vendor), value)
    assert str(ours) == str(field.get_db_prep_save(value, connection))


def test_db_value__a_field_subclass_prepares_its_own_values():
    from django.db import models

    from ledger.db import _as_is, _db_value

    class LowerCaseField(models.CharField):
        def get_prep_value(self, value):
            return super().get_prep_value(value).lower()

    field = LowerCaseField(max_length=10)
    assert _db_value(field, _as_is(field, connection.vendor), "ABC") == "abc"
