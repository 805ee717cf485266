"""The deployment as documented (docs/deploy.md, deploy/): ``check --deploy`` reports nothing with
the documented production environment, the admin's static files are served through the WSGI app
with DEBUG off, a configuration error is one line naming the variable, and every scheduler
configuration lists the registry's crons with their schedules."""

import json
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cron.registry import all_crons

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
CONTRACT_CRON_COUNT = 6


def documented_environment(tmp_path) -> dict:
    """deploy/production.env.example, its placeholders filled with fresh secrets; the database
    and broker left to the embedded default (settings only parse their URLs)."""
    env = {"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "dispatch_project.settings",
           "DISPATCH_VAR_DIR": str(tmp_path / "var")}
    for line in (DEPLOY / "production.env.example").read_text().splitlines():
        name, sep, value = line.partition("=")
        if not sep or line.startswith("#"):
            continue
        env[name] = secrets.token_urlsafe(50) if value.startswith("<") else value
    for name in ("DATABASE_URL", "REDIS_URL"):
        env.pop(name)
    return env


def run(args: list[str], env: dict, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, **kwargs)


def test_check_deploy__documented_production_settings_report_nothing(tmp_path):
    """``manage.py check --deploy`` with deploy/production.env.example: no issue at all."""
    result = run(["manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
                 documented_environment(tmp_path))
    assert result.returncode == 0, result.stderr + result.stdout
    assert result.stdout.strip() == "System check identified no issues (0 silenced)."


def test_check_deploy__without_the_https_settings_warns(tmp_path):
    """The same without HSTS: check --deploy names it (the test above can fail)."""
    env = documented_environment(tmp_path)
    env.pop("DJANGO_SECURE_HSTS_SECONDS")
    result = run(["manage.py", "check", "--deploy"], env)
    assert "security.W004" in result.stdout + result.stderr


def test_kubernetes_secret__has_the_documented_variables():
    """The Secret example carries exactly the variables of the env example."""
    secret = yaml.safe_load((DEPLOY / "kubernetes" / "secret.example.yaml").read_text())
    documented = {line.partition("=")[0] for line in
                  (DEPLOY / "production.env.example").read_text().splitlines()
                  if "=" in line and not line.startswith("#")}
    assert set(secret["stringData"]) == documented


WSGI_REQUEST = """
import json
from wsgiref.util import setup_testing_defaults
from dispatch_project.wsgi import application
environ = {"PATH_INFO": "/static/admin/css/base.css", "HTTP_HOST": "dispatch.example.com",
           "HTTP_X_FORWARDED_PROTO": "https"}
setup_testing_defaults(environ)
seen = {}
body = b"".join(application(environ, lambda status, headers: seen.update(status=status,
                                                                            headers=headers)))
print(json.dumps([seen["status"], dict(seen["headers"]).get("Content-Type"), len(body)]))
"""


def test_static__admin_css_served_through_the_wsgi_app_with_debug_off(tmp_path):
    """collectstatic, then a request for the admin's CSS through the WSGI application with
    DJANGO_DEBUG=false: 200, text/css (whitenoise), not a 404."""
    env = {**documented_environment(tmp_path), "DJANGO_STATIC_ROOT": str(tmp_path / "static")}
    collected = run(["manage.py", "collectstatic", "--no-input", "-v", "0"], env)
    assert collected.returncode == 0, collected.stderr
    assert (tmp_path / "static" / "admin" / "css" / "base.css").exists()
    served = run(["-c", WSGI_REQUEST], env)
    assert served.returncode == 0, served.stderr
    status, content_type, size = json.loads(served.stdout)
    assert status == "200 OK" and content_type.startswith("text/css"), served.stdout
    assert int(size) > 1000


@pytest.mark.parametrize("entry", [["manage.py", "check"], ["-c", "import dispatch_project.wsgi"]])
def test_configuration_error__one_line_naming_the_variable(tmp_path, entry):
    """A flag that is not a boolean: one line on stderr naming it, exit 2, no traceback."""
    env = {**documented_environment(tmp_path), "BACKGROUND_JOBS_USE_QUEUE": "maybe"}
    result = run(entry, env)
    assert result.returncode == 2
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Configuration error: BACKGROUND_JOBS_USE_QUEUE='maybe'")
    assert "Traceback" not in result.stderr


def _vercel() -> set[tuple[str, str]]:
    config = json.loads((DEPLOY / "vercel.json").read_text())
    return {(job["path"], job["schedule"]) for job in config["crons"]}


def _crontab() -> set[tuple[str, str]]:
    found = set()
    for line in (DEPLOY / "crontab").read_text().splitlines():
        match = re.match(r"^(\S+ \S+ \S+ \S+ \S+)\s+\$CURL \$URL(/api/cron/\S+)$", line)
        if match:
            found.add((match.group(2), match.group(1)))
    return found


def _kubernetes() -> set[tuple[str, str]]:
    found = set()
    for job in yaml.safe_load_all((DEPLOY / "kubernetes" / "cronjobs.yaml").read_text()):
        container = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
        url = container["args"][-1]
        found.add((url[url.index("/api/cron/"):], job["spec"]["schedule"]))
    return found


def test_scheduler_configs__list_every_registered_cron_with_its_schedule():
    """vercel.json, the crontab and the Kubernetes CronJobs agree with each other on the six
    routes of CONTRACT.md, and each registered cron is there with its registry schedule."""
    vercel = _vercel()
    assert len(vercel) == CONTRACT_CRON_COUNT
    assert _crontab() == vercel and _kubernetes() == vercel
    for cron in all_crons():
        assert (cron.url_path, cron.schedule) in vercel, cron.name
