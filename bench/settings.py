"""Bench-only settings: the real settings plus the bench app (a bench cron and the baseline
views). The bench scripts set DATABASE_URL, REDIS_URL and the secrets in
the environment before this module is imported; nothing here changes the app's behaviour."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only-secret-key-not-for-production-0123456789")
os.environ.setdefault("CRON_SECRET", "bench-cron-secret")
os.environ.setdefault("Q_CLUSTER_NAME", "bench")
# wrk speaks plain HTTP to gunicorn; production's default redirects that to HTTPS.
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")

from dispatch_project.settings import *  # noqa: E402,F403

INSTALLED_APPS = [*INSTALLED_APPS, "bench.benchapp"]  # noqa: F405
ROOT_URLCONF = "bench.urls"
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
DEBUG = False
