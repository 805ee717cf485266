"""Settings for the test suite: the real settings, with test secrets filled in before parsing.

DATABASE_URL and REDIS_URL pass through from the environment, so the same suite runs on the
embedded default (SQLite, ORM broker) and on PostgreSQL and Redis (.ci/run).
"""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production-use-0123456789")
os.environ.setdefault("CRON_SECRET", "test-cron-secret")
os.environ.setdefault("WEBHOOK_TOKEN", "test-webhook-token")
os.environ.setdefault("Q_CLUSTER_NAME", "dispatch-test")
os.environ.setdefault("LEDGER_HEARTBEAT_SECONDS", "1")
# The test client and live servers speak plain HTTP (production redirects it to HTTPS and
# sends cookies over HTTPS only; a browser test's login needs its session cookie back).
os.environ.setdefault("DJANGO_SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("DJANGO_SECURE_COOKIES", "false")

from dispatch_project.settings import *  # noqa: E402,F403

ALLOWED_HOSTS = ["*"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The ledger's cluster tests start real `qcluster` subprocesses with DISPATCH_TEST_JOBS=1, so
# they register the same throwaway job functions as the test process (tests/ledger/jobs_for_tests.py).
if os.environ.get("DISPATCH_TEST_JOBS") == "1":
    INSTALLED_APPS = [*INSTALLED_APPS, "tests.ledger.apps.LedgerTestJobsConfig"]  # noqa: F405
