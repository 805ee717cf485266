"""ledger.metrics: emission never breaks the business path; labels stay bounded; the
multiprocess directory keeps live processes' files only."""

import os
import subprocess
import sys

import httpx

from ledger import metrics
from ledger.checks import check_metrics_directory
from tests.cluster import ROOT
from tests.webserver import free_port


def test_emission__a_failure_is_logged_not_raised(caplog):
    """A metric that cannot be recorded (here: not a run at all) logs a warning and returns."""
    metrics.run_finished(object())
    assert [r.action for r in caplog.records] == ["metrics_emit_failed"]


def test_bounded__unknown_event_types_are_other():
    """Event types outside the registered ones are reported as "other"."""
    def other() -> float:
        return metrics.EVENTS.get_sample_value(
            "dispatch_webhooks_received_total", {"event_type": "other", "outcome": "queued"}) or 0

    before = other()
    metrics.webhook_received(event_type="SOMETHING_NEW_12345", outcome="queued")
    metrics.webhook_received(event_type="EMAIL_SENT", outcome="queued")
    assert other() == before + 1
    labels = {s.labels["event_type"] for s in metrics.WEBHOOKS_RECEIVED.collect()[0].samples}
    assert "SOMETHING_NEW_12345" not in labels and "EMAIL_SENT" in labels


def test_multiprocess_dir_clean__keeps_live_processes_files(tmp_path):
    """Files of a dead pid go, files of a live one (this process) stay, others are untouched."""
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)
    dead = int(finished.stdout)
    for name in (f"counter_{dead}.db", f"histogram_{dead}.db", f"counter_{os.getpid()}.db",
                 "notes.txt"):
        (tmp_path / name).write_text("x")
    assert metrics.multiprocess_dir_clean(str(tmp_path)) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"counter_{os.getpid()}.db",
                                                          "notes.txt"]


def test_check_metrics_directory__unwritable_is_an_error(tmp_path, monkeypatch):
    """ledger.E004 when PROMETHEUS_MULTIPROC_DIR is not a writable directory; none when unset."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert check_metrics_directory() == []
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "missing"))
    assert [error.id for error in check_metrics_directory()] == ["ledger.E004"]
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    assert check_metrics_directory() == []


def test_serve_metrics__serves_what_other_processes_counted(tmp_path):
    """``manage.py serve_metrics`` (a cluster pod's sidecar) sums the counters that another
    process wrote to PROMETHEUS_MULTIPROC_DIR, behind METRICS_TOKEN."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "dispatch_project.test_settings",
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "METRICS_TOKEN": "sidecar-token"}
    count = ("from ledger import metrics; "
             "[metrics.trigger_observed(cron='report', outcome='dispatch-only') for _ in range(3)]")
    subprocess.run([sys.executable, "-c", count], env=env, cwd=ROOT, check=True, timeout=60)
    port = free_port()
    server = subprocess.Popen([sys.executable, "manage.py", "serve_metrics", "--bind",
                               "127.0.0.1", "--port", str(port)], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert b"serving" in server.stdout.readline()
        url = f"http://127.0.0.1:{port}/metrics"
        assert httpx.get(url, timeout=5).status_code == 401
        scraped = httpx.get(url, timeout=5, headers={"Authorization": "Bearer sidecar-token"})
        assert ('dispatch_triggers_total{cron="report",outcome="dispatch-only"} 3.0'
                in scraped.text)
    finally:
        server.terminate()
        server.wait(timeout=10)
