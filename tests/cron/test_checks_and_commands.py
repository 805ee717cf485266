"""System checks, the cron commands and schedule sync."""

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django_q.models import Schedule
from freezegun import freeze_time

from cron.checks import check_cron_functions, check_cron_secret
from cron.models import DispatchWindow
from cron.registry import CronDefinition, CronFunction, register_cron, unregister_cron
from ledger.checks import check_q_cluster_retry
from ledger.models import FunctionRun, RunStatus


@override_settings(CRON_SECRET="")
def test_check__unset_cron_secret_is_an_error():
    errors = check_cron_secret()
    assert [error.id for error in errors] == ["cron.E001"]
    assert "CRON_SECRET" in errors[0].hint


def test_check__cron_secret_set_is_fine():
    assert check_cron_secret() == []


def test_check__a_cron_naming_an_unregistered_function_is_an_error():
    register_cron(CronDefinition(name="ghost", route="ghost", functions=(
        CronFunction("no-such-function", "ghost"),), window_seconds=60, schedule="* * * * *"))
    try:
        assert [error.id for error in check_cron_functions()] == ["cron.E002"]
    finally:
        unregister_cron("ghost")


def test_check__q_cluster_retry_above_longest_timeout(monkeypatch, make_function):
    from django_q.conf import Conf

    assert check_q_cluster_retry() == []
    make_function("very-long", timeout_seconds=Conf.RETRY)
    assert "ledger.E001" in [error.id for error in check_q_cluster_retry()]


def test_registry__duplicate_cron_name_says_how_to_fix(make_cron):
    make_cron("twice")
    from cron.registry import DuplicateCron

    with pytest.raises(DuplicateCron, match="give the new cron its own name"):
        register_cron(CronDefinition(name="twice", route="twice-2", functions=(
            CronFunction("twice-fn", "t"),), window_seconds=60, schedule="* * * * *"))


@pytest.mark.django_db
def test_run_cron__runs_inline_through_the_ledger(capsys):
    """run_cron: every function now, source command, printed as JSON."""
    call_command("run_cron", "background-jobs")
    body = json.loads(capsys.readouterr().out)
    assert body["mode"] == "inline" and body["dispatch"]["source"] == "command"
    runs = FunctionRun.objects.filter(source="command")
    assert runs.count() == 2 and {run.status for run in runs} == {RunStatus.SUCCEEDED}


@pytest.mark.django_db
def test_run_cron__failure_exits_non_zero(make_cron):
    def explode(payload):
        raise ValueError("bad data")

    make_cron("fragile", use_queue=False, functions=[("fragile-fn", "fragile", explode)])
    with pytest.raises(CommandError, match="1 run\\(s\\) failed"):
        call_command("run_cron", "fragile")


@pytest.mark.django_db
def test_run_cron__unknown_cron_and_bad_params_are_clear_errors(make_cron):
    with pytest.raises(CommandError, match="Known crons"):
        call_command("run_cron", "nope")
    make_cron("report", allowed_params={"limit"})
    with pytest.raises(CommandError, match="accepts: limit"):
        call_command("run_cron", "report", "--param", "bogus=1")
    with pytest.raises(CommandError, match="name=value"):
        call_command("run_cron", "report", "--param", "limit")


@pytest.mark.django_db
def test_dispatch_cron__same_window_same_dedupe_as_http(cron_client, capsys):
    """dispatch_cron takes the HTTP path's dispatch: a window already dispatched is a duplicate."""
    with freeze_time("2026-02-17T19:31:10Z"):
        call_command("dispatch_cron", "background-jobs")
        first = json.loads(capsys.readouterr().out)
        assert cron_client.get("/api/cron/background-jobs").json()["mode"] == (
            "dispatch-duplicate-suppressed")
        call_command("dispatch_cron", "background-jobs")
        second = json.loads(capsys.readouterr().out)
    assert first["mode"] == "dispatch-only" and first["dispatch"]["source"] == "command"
    assert second["mode"] == "dispatch-duplicate-suppressed"
    assert DispatchWindow.objects.count() == 1


@pytest.mark.django_db
def test_dispatch_cron__dispatches_even_when_the_flag_is_off(make_cron, capsys):
    make_cron("report", use_queue=False)
    call_command("dispatch_cron", "report")
    assert json.loads(capsys.readouterr().out)["mode"] == "dispatch-only"


@pytest.mark.django_db
def test_sync_cron_schedules__one_schedule_per_cron_idempotent(make_cron, capsys):
    make_cron("report", schedule="*/5 * * * *")
    call_command("sync_cron_schedules")
    names = set(Schedule.objects.values_list("name", flat=True))
    assert {"cron:background-jobs", "cron:report", "ledger:sweep"} <= names
    assert Schedule.objects.get(name="cron:report").cron == "*/5 * * * *"
    capsys.readouterr()
    call_command("sync_cron_schedules")
    assert "already in sync" in capsys.readouterr().out
    unregister_cron("report")
    call_command("sync_cron_schedules")
    assert "removed: cron:report" in capsys.readouterr().out


@pytest.mark.django_db
def test_scheduled_trigger__takes_the_dispatch_path_with_source_schedule():
    from cron.tasks import scheduled_trigger

    with freeze_time("2026-02-17T19:31:10Z"):
        first = scheduled_trigger("background-jobs")
        second = scheduled_trigger("background-jobs")
    assert first["mode"] == "dispatch-only" and second["mode"] == "dispatch-duplicate-suppressed"
    assert DispatchWindow.objects.get().source == "schedule"
