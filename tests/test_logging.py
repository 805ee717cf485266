"""One log stream: JSON lines from the web and cluster processes, Django-Q's included, and a
correlation id that finds every stage of a dispatch."""

import io
import json
import logging
import os
import subprocess
import sys

import httpx
import pytest

from dispatch_project.logging import StructuredFormatter
from ledger.log_context import LogContextFilter
from ledger.models import FunctionRun
from ledger.runner import run_inline
from ledger.services import RunRequest
from tests.cluster import ROOT, poll, qcluster
from tests.conftest import CRON_SECRET
from tests.webserver import gunicorn


def record(**extra) -> logging.LogRecord:
    made = logging.LogRecord("cron.services", logging.INFO, __file__, 1, "cron %s", ("dispatched",),
                             None)
    made.created = 1771356660.1234  # 2026-02-17T19:31:00.123Z
    for name, value in extra.items():
        setattr(made, name, value)
    return made


def test_formatter__json_line_with_utc_millis_and_fields_first():
    """One JSON object: UTC time with milliseconds, level, logger, message, then the known
    fields in order, then any other extra."""
    line = StructuredFormatter().format(record(task_ids=["a"], correlation_id="c-1",
                                               action="cron_dispatched", cron="background-jobs"))
    assert "\n" not in line
    parsed = json.loads(line)
    assert list(parsed) == ["time", "level", "logger", "message", "action", "cron",
                            "correlation_id", "task_ids"]
    assert parsed["time"] == "2026-02-17T19:31:00.123Z"
    assert parsed["message"] == "cron dispatched" and parsed["level"] == "INFO"


def test_formatter__exception_stays_on_one_line():
    """A traceback is a field of the same line, not lines of its own."""
    try:
        raise ValueError("boom")
    except ValueError:
        failing = record()
        failing.exc_info = sys.exc_info()
    parsed = json.loads(StructuredFormatter().format(failing))
    assert "ValueError: boom" in parsed["exception"]


def test_formatter__text_for_humans():
    """LOG_FORMAT=text: time level logger message {extra}."""
    line = StructuredFormatter(output="text").format(record(action="cron_dispatched"))
    assert " INFO cron.services cron dispatched " in line
    assert line.endswith('{"action": "cron_dispatched"}')


def json_lines(text: str) -> list[dict]:
    """The output's JSON lines (gunicorn's own start-up lines are its format, not ours)."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.mark.cluster
@pytest.mark.django_db(transaction=True)
def test_logs__every_stage_of_a_dispatch_carries_its_correlation_id():
    """A dispatch over HTTP (gunicorn) whose runs execute on a real cluster: the trigger, the
    dispatch, each run's start and end are JSON lines carrying the request's correlation id,
    once each; Django-Q's own lines are JSON too."""
    correlation = "log-stream-e2e-1"
    with gunicorn(workers=1) as server, qcluster(workers=2) as cluster:
        response = httpx.get(server.url + "/api/cron/background-jobs", timeout=10, headers={
            "Authorization": f"Bearer {CRON_SECRET}", "X-Correlation-Id": correlation})
        assert response.status_code == 202, response.text
        key = response.json()["dispatch"]["dispatchKey"]

        def finished():
            runs = FunctionRun.objects.filter(dispatch_key=key)
            return runs.count() == 2 and all(run.is_terminal for run in runs)

        poll(finished, timeout=30, what="both runs finished", clusters=[cluster])
        cluster_lines = poll(
            lambda: (lines := json_lines(cluster.log_text())) and sum(
                line.get("action") == "run_attempt_ended" for line in lines) == 2 and lines,
            timeout=10, what="both runs' end lines", clusters=[cluster])
        web_lines = json_lines(server.log_text())
    ours = [line for line in web_lines + cluster_lines
            if line.get("correlation_id") == correlation]
    actions = sorted(line["action"] for line in ours)
    assert actions == ["cron_dispatched", "cron_triggered", "run_attempt_ended",
                       "run_attempt_ended", "run_started", "run_started"]
    assert {line["function"] for line in ours if line["action"] == "run_started"} == {
        "process-background-jobs", "background-maintenance"}
    assert all(line["dispatch_key"] == key for line in ours if line["action"].startswith("cron"))
    assert all(line["time"].endswith("Z") for line in ours)
    assert any(line["logger"] == "django-q" for line in cluster_lines)
    assert not [line for line in cluster.log_text().splitlines()
                if line.strip() and not line.startswith("{")]


@pytest.mark.parametrize("debug", ["true", "false"])
def test_logs__a_refused_request_logs_once(debug):
    """Django's own handlers are gone (DEBUG or not): a 401 is one ``django.request`` line,
    in JSON, not one from Django's console handler and another from ours."""
    script = ("import django; django.setup(); from django.test import Client; "
              "print(Client().post('/api/webhooks/email', data=b'{}', "
              "content_type='application/json').status_code)")
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "dispatch_project.test_settings",
                   "DJANGO_DEBUG": debug, "LOG_FORMAT": "json"}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "401", done.stderr
    lines = [line for line in done.stderr.splitlines() if "Unauthorized" in line]
    assert len(lines) == 1, done.stderr
    assert json.loads(lines[0])["logger"] == "django.request"


@pytest.mark.django_db
def test_logs__lines_written_during_a_run_carry_its_fields(make_function):
    """A line the job's own code writes carries the run's correlation id, run id, function and
    attempt (the handler's LogContextFilter); a line after the run does not."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(StructuredFormatter())
    handler.addFilter(LogContextFilter())
    job_logger = logging.getLogger("tests.job")
    job_logger.addHandler(handler)
    job_logger.setLevel(logging.INFO)

    def job(payload):
        job_logger.info("inside the job")
        return {}

    make_function("t-logs", job, retries=0)
    try:
        run = run_inline(request=RunRequest(function="t-logs", payload={}, source="command",
                                             correlation_id="ctx-1", dispatch_key="k:1"))
        job_logger.info("after the run")
    finally:
        job_logger.removeHandler(handler)
    inside, after = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert (inside["correlation_id"], inside["run_id"], inside["function"], inside["attempt"],
            inside["dispatch_key"]) == ("ctx-1", run.pk, "t-logs", 1, "k:1")
    assert "correlation_id" not in after and "run_id" not in after
