"""``manage.py check --deploy`` is clean with the production settings the README documents."""

import os
import subprocess
import sys

from tests.cluster import ROOT

PRODUCTION_ENV = {
    "DJANGO_SECRET_KEY": "a-long-random-production-key-0123456789-abcdefghijklmnopqrstuvwxyz",
    "DJANGO_ALLOWED_HOSTS": "dispatch.example.com",
    "DJANGO_HTTPS": "true",
    "DJANGO_HSTS_SECONDS": "31536000",
    "DJANGO_HSTS_INCLUDE_SUBDOMAINS": "true",
    "DJANGO_HSTS_PRELOAD": "true",
    "CRON_SECRET": "a-cron-secret",
    "WEBHOOK_TOKEN": "a-webhook-token",
}


def test_check_deploy__clean_with_the_documented_production_settings():
    """No warning at all (security.W004/W008/W012/W016 and the HSTS ones included)."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("DJANGO_", "CRON_", "WEBHOOK_"))}
    env.update(PRODUCTION_ENV, DJANGO_SETTINGS_MODULE="dispatch_project.settings")
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy",
                             "--fail-level", "WARNING"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
