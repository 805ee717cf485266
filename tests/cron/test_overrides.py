"""Runtime overrides: they beat the environment flags at once, every change is audited, the
trail is append-only, and the command sets and clears them."""

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django.utils import timezone

from cron.exceptions import AuditImmutable, InvalidOverride, UnknownCron
from cron.models import CronOverride, CronOverrideAudit, DispatchWindow, PausedTrigger
from cron.modes import CronMode, ModeSource, cron_mode
from cron.overrides import cron_override_set
from cron.registry import get_cron
from ledger.models import FunctionRun

URL = "/api/cron/background-jobs"


def _set(mode, reason="on-call test", cron="background-jobs"):
    return cron_override_set(cron=cron, mode=mode, reason=reason, actor="alice",
                             now=timezone.now(), source="command")


@pytest.mark.django_db
def test_pause__route_answers_paused_at_once_records_the_trigger_and_audits(cron_client):
    """A pause changes the next answer: 200 paused, nothing enqueued, no window consumed, the
    trigger recorded; clearing it dispatches in the same window."""
    _set("pause", "broker maintenance")
    response = cron_client.get(URL, HTTP_X_CORRELATION_ID="corr-paused")
    body = response.json()
    assert response.status_code == 200
    assert (body["success"], body["mode"], body["enqueued"]) == (True, "paused", False)
    assert body["dispatch"]["dispatchKey"].startswith("background-jobs:v1:60:")
    assert "timestamp" in body
    trigger = PausedTrigger.objects.get()
    assert (trigger.dispatch_key, trigger.correlation_id, trigger.override_reason) == (
        body["dispatch"]["dispatchKey"], "corr-paused", "broker maintenance")
    assert not DispatchWindow.objects.exists() and not FunctionRun.objects.exists()
    _set("clear", "maintenance over")
    assert cron_client.get(URL).status_code == 202
    audit = list(CronOverrideAudit.objects.order_by("at", "id").values_list(
        "old_mode", "new_mode", "actor", "reason"))
    assert audit == [("", "pause", "alice", "broker maintenance"),
                     ("pause", "", "alice", "maintenance over")]


@pytest.mark.django_db
@override_settings(BACKGROUND_JOBS_USE_QUEUE=True, BACKGROUND_JOBS_FORCE_INLINE=False)
def test_force_inline_override__beats_the_queue_flag(cron_client):
    """force-inline runs inline (inline-forced) though the flag says queue; the mode says so."""
    _set("force-inline")
    decision = cron_mode(get_cron("background-jobs"))
    assert (decision.mode, decision.source) == (CronMode.INLINE_FORCED, ModeSource.OVERRIDE)
    response = cron_client.get(URL)
    assert (response.status_code, response.json()["mode"]) == (200, "inline-forced")
    assert FunctionRun.objects.filter(inline=True).count() == 2


@pytest.mark.django_db
@override_settings(BACKGROUND_JOBS_FORCE_INLINE=True)
def test_use_queue_override__beats_the_force_inline_switch(cron_client):
    """use-queue dispatches although BACKGROUND_JOBS_FORCE_INLINE=true."""
    assert cron_mode(get_cron("background-jobs")).mode == CronMode.INLINE_FORCED
    assert cron_mode(get_cron("background-jobs")).source == ModeSource.ENV
    _set("use-queue")
    response = cron_client.get(URL)
    assert (response.status_code, response.json()["mode"]) == (202, "dispatch-only")


@pytest.mark.django_db
@override_settings(BACKGROUND_JOBS_USE_QUEUE=False)
def test_cron_mode__env_then_override_then_forced():
    """Without an override the flag decides (env); an explicit dispatch is forced."""
    cron = get_cron("background-jobs")
    env = cron_mode(cron)
    assert (env.mode, env.source, env.why) == (CronMode.INLINE, ModeSource.ENV,
                                               "BACKGROUND_JOBS_USE_QUEUE=false")
    _set("pause")
    assert cron_mode(cron).source == ModeSource.OVERRIDE
    assert "alice" in cron_mode(cron).why and "on-call test" in cron_mode(cron).why
    forced = cron_mode(cron, dispatch=True)
    assert (forced.mode, forced.source) == (CronMode.QUEUE, ModeSource.FORCED)


@pytest.mark.django_db
def test_override_set__refuses_unknown_cron_bad_mode_and_blank_reason():
    """Errors name what to fix; nothing is written."""
    with pytest.raises(UnknownCron, match="Known crons: .*background-jobs"):
        _set("pause", cron="nope")
    with pytest.raises(InvalidOverride, match="use one of"):
        _set("sleep")
    with pytest.raises(InvalidOverride, match="reason"):
        _set("pause", reason="  ")
    assert not CronOverride.objects.exists() and not CronOverrideAudit.objects.exists()


@pytest.mark.django_db
def test_audit__rows_are_never_edited_or_deleted():
    """save() of an existing row, delete(), and bulk update/delete all refuse."""
    _set("pause")
    row = CronOverrideAudit.objects.get()
    row.reason = "rewritten"
    with pytest.raises(AuditImmutable):
        row.save()
    with pytest.raises(AuditImmutable):
        row.delete()
    with pytest.raises(AuditImmutable):
        CronOverrideAudit.objects.all().update(reason="x")
    with pytest.raises(AuditImmutable):
        CronOverrideAudit.objects.all().delete()
    assert CronOverrideAudit.objects.get().reason == "on-call test"


@pytest.mark.django_db
def test_command__sets_clears_requires_reason_and_lists_crons(capsys):
    """cron_override NAME MODE --reason: prints the mode and its source; errors name the crons."""
    call_command("cron_override", "background-jobs", "pause", "--reason", "incident 42",
                 "--actor", "bob")
    assert "background-jobs: mode paused (from override: pause set by bob" in \
        capsys.readouterr().out
    assert CronOverride.objects.get().mode == "pause"
    call_command("cron_override", "background-jobs", "clear", "--reason", "fixed")
    assert not CronOverride.objects.exists()
    assert "(from env:" in capsys.readouterr().out
    with pytest.raises(CommandError, match="Known crons: .*background-jobs"):
        call_command("cron_override", "nope", "pause", "--reason", "x")
    with pytest.raises(CommandError, match="--reason"):
        call_command("cron_override", "background-jobs", "pause")
    assert [row.new_mode for row in CronOverrideAudit.objects.order_by("id")] == ["pause", ""]
