"""gunicorn.conf.py reads its settings from the environment (docs/deploy.md, "1. Processes")."""

import runpy

import pytest

from tests.cluster import ROOT


def load(monkeypatch, **env) -> dict:
    for name in ("PORT", "GUNICORN_BIND", "GUNICORN_WORKERS", "GUNICORN_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_conf__defaults_are_threaded_workers_on_localhost(monkeypatch):
    """No environment: 127.0.0.1:8000, 2 threaded workers of 8 threads, the read-timeout class."""
    conf = load(monkeypatch)
    assert conf["bind"] == ["127.0.0.1:8000"]
    assert (conf["workers"], conf["threads"]) == (2, 8)
    assert conf["worker_class"] == "dispatch_project.gunicorn_worker.BoundedReadThreadWorker"
    assert conf["timeout"] and conf["graceful_timeout"] and conf["keepalive"]
    assert callable(conf["post_worker_init"])


@pytest.mark.parametrize(("env", "bind"), [
    ({"PORT": "9000"}, ["0.0.0.0:9000"]),
    ({"PORT": "9000", "GUNICORN_BIND": "unix:/run/d.sock, 127.0.0.1:1"},
     ["unix:/run/d.sock", "127.0.0.1:1"]),
])
def test_conf__bind_from_port_or_gunicorn_bind(monkeypatch, env, bind):
    """PORT binds every interface (platforms that route to it); GUNICORN_BIND wins."""
    assert load(monkeypatch, **env)["bind"] == bind


def test_conf__workers_and_threads_from_the_environment(monkeypatch):
    """GUNICORN_WORKERS and GUNICORN_THREADS size the server."""
    conf = load(monkeypatch, GUNICORN_WORKERS="3", GUNICORN_THREADS="4")
    assert (conf["workers"], conf["threads"]) == (3, 4)
