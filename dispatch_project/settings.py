"""Settings, parsed once from the environment (CONTRACT.md "Settings" and "Mode flags").

Anything invalid raises ImproperlyConfigured naming the variable, so the process refuses to start
instead of running with a silently wrong value. Apps read these settings at call time through
their own ``conf.py``, so ``override_settings`` works in tests.
"""

from pathlib import Path

import dj_database_url

from dispatch_project.env import (
    env_bool,
    env_int,
    env_list,
    env_matching,
    env_secret,
    env_secret_list,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("DISPATCH_VAR_DIR", str(BASE_DIR / "var")))

# --- Django core ---------------------------------------------------------------------------
DEBUG = env_bool("DJANGO_DEBUG", False)
SECRET_KEY = env_secret("DJANGO_SECRET_KEY") or (
    "insecure-dev-key-set-DJANGO_SECRET_KEY-in-production" if DEBUG else ""
)
if not SECRET_KEY:
    # Django itself refuses an empty SECRET_KEY; say which variable fixes it.
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is not set. Set it to a long random string "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))'), "
        "or set DJANGO_DEBUG=true for local development."
    )
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_q",
    "ledger",
    "webhooks",
    "jobs",
    "cron",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "dispatch_project.middleware.RefuseNulMiddleware",  # ?status=%00 is a 400, not a 500
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Everything needs a login unless a view opts out with @login_not_required (the machine
    # routes, which authenticate with their own secrets).
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
LOGIN_URL = "admin:login"

ROOT_URLCONF = "dispatch_project.urls"
WSGI_APPLICATION = "dispatch_project.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database --------------------------------------------------------------------------------
# Default: a SQLite file in the project (WAL, IMMEDIATE transactions: django-q2 silently loses
# results on "database is locked" otherwise). Production: DATABASE_URL (PostgreSQL, psycopg 3)
# with persistent connections: a connection per request cut a one-INSERT view from ~750 to
# ~100 requests/s on these machines.
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 600, minimum=0),
            conn_health_checks=True,
        )
    }
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_bool(
            "DATABASE_PREPARED_STATEMENTS", True):
        # Only the statements our code asks for are prepared (ledger.db.hot_cursor: the
        # webhook INSERT, the dispatch statement, the runner's claim and finish): psycopg
        # prepares automatically after this many runs, and Django's own cursors bind in the
        # client and never do. hot_cursor drops them every minute with DEALLOCATE ALL. Set
        # false behind a pooler in transaction mode that cannot carry them (PgBouncer before
        # 1.22, which passes DEALLOCATE ALL to one server connection, or without
        # max_prepared_statements).
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 2**31 - 1
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "db.sqlite3"),
        }
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": (
                "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL;PRAGMA busy_timeout=20000;"
            ),
        }
    )
    # Tests use a file, not ":memory:", so a real qcluster subprocess can open the same database.
    DATABASES["default"].setdefault("TEST", {})["NAME"] = str(
        VAR_DIR / env_str("DISPATCH_TEST_DB_NAME", "test_db.sqlite3")
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Django-Q2 -------------------------------------------------------------------------------
# The ledger is the source of truth; Django-Q is the doorbell. Chosen deliberately:
# - max_attempts 1 and ack_failures: Django-Q never retries on its own (its default retries
#   forever); the ledger's runner records each attempt and schedules the next.
# - timeout: the limit for a task that names none. Each run passes its own limit through
#   q_options (its function's timeout plus the runner's room, ledger.conf.task_timeout_seconds);
#   the runner enforces the function's timeout itself and records "timeout".
# - retry (ORM broker redelivery of an unacknowledged task, counted from its claim) above the
#   longest delivery plus margin, so a task that is still running is never delivered twice; a
#   killed worker's task comes back after it and finds the run already taken back by the
#   sweeper (or takes it back itself). ledger.E001 refuses a retry that is too short.
#   Q_RETRY_SECONDS overrides it (tests shorten it to watch redeliveries; E001 still applies).
# - save_limit -1: successes are not stored by Django-Q (its default 250 prunes on every task
#   and cut drain throughput about sixfold); the ledger is our record.
REDIS_URL = env_str("REDIS_URL")
LEDGER_MAX_TIMEOUT_SECONDS = env_int("LEDGER_MAX_TIMEOUT_SECONDS", 900, minimum=5, maximum=86400)
Q_CLUSTER = {
    "name": env_str("Q_CLUSTER_NAME", "dispatch"),
    "workers": env_int("Q_WORKERS", 2, minimum=1, maximum=64),
    "timeout": LEDGER_MAX_TIMEOUT_SECONDS + 60,
    "retry": env_int("Q_RETRY_SECONDS", LEDGER_MAX_TIMEOUT_SECONDS + 120, minimum=5),
    "max_attempts": 1,
    "ack_failures": True,
    "save_limit": -1,
    "catch_up": False,
    "poll": float(env_str("Q_POLL_SECONDS", "0.2") or "0.2"),
    "label": "Django Q",
}
if REDIS_URL:
    from redis.backoff import ExponentialBackoff
    from redis.connection import parse_url
    from redis.retry import Retry

    # Bounded timeouts and retries: a hung or stopped broker makes a dispatch answer 503 in
    # well under a second (redis-py's default retries took ~4 s), never hang.
    Q_CLUSTER["redis"] = {
        **parse_url(REDIS_URL),
        "retry": Retry(ExponentialBackoff(cap=0.2, base=0.02), 2),
        "socket_connect_timeout": 2,
        "socket_timeout": env_int("REDIS_SOCKET_TIMEOUT_SECONDS", 5, minimum=1),
        "health_check_interval": 30,
    }
else:
    # The app's own alias: a separate alias closes the default connection inside atomic()
    # (django-q2 #293), and on "default" an enqueue commits or rolls back with our rows.
    Q_CLUSTER["orm"] = "default"

# --- Crons -----------------------------------------------------------------------------------
CRON_SECRET = env_secret("CRON_SECRET")
BACKGROUND_JOBS_USE_QUEUE = env_bool("BACKGROUND_JOBS_USE_QUEUE", True)
BACKGROUND_JOBS_FORCE_INLINE = env_bool("BACKGROUND_JOBS_FORCE_INLINE", False)
BACKGROUND_JOBS_INLINE_EMERGENCY_FALLBACK = env_bool(
    "BACKGROUND_JOBS_INLINE_EMERGENCY_FALLBACK", False
)
CRON_RESPONSE_TIMING_USE_QUEUE = env_bool("CRON_RESPONSE_TIMING_USE_QUEUE", False)
CRON_APPOINTMENT_RECONCILE_USE_QUEUE = env_bool("CRON_APPOINTMENT_RECONCILE_USE_QUEUE", False)
CRON_FOLLOWUPS_USE_QUEUE = env_bool("CRON_FOLLOWUPS_USE_QUEUE", False)
CRON_AVAILABILITY_USE_QUEUE = env_bool("CRON_AVAILABILITY_USE_QUEUE", False)
CRON_EMAILBISON_AVAILABILITY_SLOT_USE_QUEUE = env_bool(
    "CRON_EMAILBISON_AVAILABILITY_SLOT_USE_QUEUE", False
)
# Any other CRON_<NAME>_USE_QUEUE flag, for crons registered later.
for _name in env_matching(r"CRON_[A-Z0-9_]+_USE_QUEUE"):
    globals()[_name] = env_bool(_name, False)
# Window overrides, clamped to [15, 3600]; a value that is not a number is a startup error.
CRON_DISPATCH_WINDOW_MIN_SECONDS = 15
CRON_DISPATCH_WINDOW_MAX_SECONDS = 3600
for _name in env_matching(r"(BACKGROUND_JOBS|CRON_[A-Z0-9_]+)_DISPATCH_WINDOW_SECONDS"):
    globals()[_name] = env_int(_name, 60, minimum=15, maximum=3600, clamp=True)
CRON_DISPATCH_WINDOW_RETENTION_DAYS = env_int("CRON_DISPATCH_WINDOW_RETENTION_DAYS", 30, minimum=1)

# --- Ledger ----------------------------------------------------------------------------------
LEDGER_RUN_RETENTION_DAYS = env_int("LEDGER_RUN_RETENTION_DAYS", 30, minimum=1)
LEDGER_GRACE_SECONDS = env_int("LEDGER_GRACE_SECONDS", 60, minimum=1)
LEDGER_REQUEUE_AFTER_SECONDS = env_int("LEDGER_REQUEUE_AFTER_SECONDS", 120, minimum=5)
LEDGER_HEARTBEAT_SECONDS = env_int("LEDGER_HEARTBEAT_SECONDS", 10, minimum=1, maximum=300)

# --- Webhooks --------------------------------------------------------------------------------
WEBHOOK_TOKEN = env_secret_list("WEBHOOK_TOKEN")
WEBHOOK_SIGNING_SECRET = env_secret_list("WEBHOOK_SIGNING_SECRET")
WEBHOOK_ALLOW_UNAUTHENTICATED = env_bool("WEBHOOK_ALLOW_UNAUTHENTICATED", False)
WEBHOOK_MAX_BODY_BYTES = env_int("WEBHOOK_MAX_BODY_BYTES", 1024 * 1024, minimum=1024)
WEBHOOK_INLINE_EVENT_TYPES = [t.upper() for t in env_list("WEBHOOK_INLINE_EVENT_TYPES")]
INBOXXIA_EMAIL_SENT_ASYNC = env_bool("INBOXXIA_EMAIL_SENT_ASYNC", True)
# The drain (docs/webhooks.md): attempts before an event ends failed, a claim's lease, events
# per claim, a drain's time budget (below process-background-jobs' 120 s timeout), and how long
# succeeded/ignored events are kept (failed ones are never pruned).
WEBHOOK_MAX_ATTEMPTS = env_int("WEBHOOK_MAX_ATTEMPTS", 8, minimum=1, maximum=50)
WEBHOOK_LEASE_SECONDS = env_int("WEBHOOK_LEASE_SECONDS", 120, minimum=10, maximum=3600)
WEBHOOK_DRAIN_BATCH_SIZE = env_int("WEBHOOK_DRAIN_BATCH_SIZE", 50, minimum=1, maximum=1000)
# Events per claim in the doorbell's drain: small, so an event waits for few others and a second
# drainer can take the rest (a claim is ~1 ms); it claims again until the queue is empty.
WEBHOOK_DOORBELL_BATCH_SIZE = env_int("WEBHOOK_DOORBELL_BATCH_SIZE", 5, minimum=1, maximum=1000)
WEBHOOK_DRAIN_BUDGET_SECONDS = env_int("WEBHOOK_DRAIN_BUDGET_SECONDS", 45, minimum=1,
                                       maximum=100)
WEBHOOK_EVENT_RETENTION_DAYS = env_int("WEBHOOK_EVENT_RETENTION_DAYS", 30, minimum=1)
# Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) stays: the webhook view reads its raw body from
# the stream within WEBHOOK_MAX_BODY_BYTES itself (webhooks.views.read_limited_body).

# --- HTTP, static, admin ---------------------------------------------------------------------
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en-us"
USE_I18N = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
# Served over HTTPS (behind the proxy of docs/deploy-proxy.md, which sets X-Forwarded-Proto):
# plain HTTP is redirected, cookies are secure-only, HSTS for DJANGO_HSTS_SECONDS. With it,
# `manage.py check --deploy` is clean.
if env_bool("DJANGO_HTTPS", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 3600, minimum=1)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", False)
    SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", False)
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"structured": {"()": "dispatch_project.logging.StructuredFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper() or "INFO"},
    "loggers": {"django-q": {"level": env_str("Q_LOG_LEVEL", "WARNING").upper() or "WARNING"}},
}
