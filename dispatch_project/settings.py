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
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "django_q",
    "ledger",
    "webhooks",
    "jobs",
    "cron",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files (the admin's CSS and JS) served by the app itself under gunicorn.
    "whitenoise.middleware.WhiteNoiseMiddleware",
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
# with persistent connections, health-checked before reuse (CONN_HEALTH_CHECKS), so a
# restarted database costs one failed check, not a failed request or task.
DATABASE_URL = env_str("DATABASE_URL")
if DATABASE_URL:
    DATABASES = {
        "default": dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 600, minimum=0),
            conn_health_checks=True,
        )
    }
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
    # The ORM broker with the clusters' status (Django-Q's Stat) in the database, where the
    # probes and metrics of every process can read it (ledger/cluster_stats.py).
    Q_CLUSTER["broker_class"] = "ledger.cluster_stats.OrmBrokerWithStats"

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
# The doorbell's drain runs this long, then queues another behind whatever else waits, so a
# burst never keeps the cluster's workers from the crons for long.
WEBHOOK_DOORBELL_BUDGET_SECONDS = env_int("WEBHOOK_DOORBELL_BUDGET_SECONDS", 10, minimum=1,
                                          maximum=100)
WEBHOOK_EVENT_RETENTION_DAYS = env_int("WEBHOOK_EVENT_RETENTION_DAYS", 30, minimum=1)
# /healthz/pipeline fails when the oldest due event has waited longer than this.
WEBHOOK_BACKLOG_MAX_AGE_SECONDS = env_int("WEBHOOK_BACKLOG_MAX_AGE_SECONDS", 300, minimum=1)
# Django's DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB) stays: the webhook view reads its raw body from
# the stream within WEBHOOK_MAX_BODY_BYTES itself (webhooks.views.read_limited_body).

# --- Provider crons (jobs/providers, jobs/conf.py) -------------------------------------------
# One provider request's timeout (also cut to the run's time budget), retries on 429/5xx, and the
# longest wait before a retry (a longer Retry-After fails the call at once).
PROVIDER_TIMEOUT_SECONDS = env_int("PROVIDER_TIMEOUT_SECONDS", 10, minimum=1, maximum=120)
PROVIDER_MAX_RETRIES = env_int("PROVIDER_MAX_RETRIES", 2, minimum=0, maximum=5)
PROVIDER_BACKOFF_MAX_SECONDS = env_int("PROVIDER_BACKOFF_MAX_SECONDS", 30, minimum=1, maximum=300)
# How long a refreshed availability cache is fresh; appointment-reconcile's time budget (below
# cron-appointment-reconcile's 120 s timeout).
AVAILABILITY_CACHE_TTL_SECONDS = env_int("AVAILABILITY_CACHE_TTL_SECONDS", 900, minimum=60,
                                         maximum=86400)
APPOINTMENT_RECONCILE_TIME_BUDGET_SECONDS = env_int(
    "APPOINTMENT_RECONCILE_TIME_BUDGET_SECONDS", 45, minimum=5, maximum=100)
# response-timing's and followups' time budgets (below their functions' 300 s and 120 s
# timeouts), and how long a dead followups run keeps its SQLite lease (jobs/locks.py).
RESPONSE_TIMING_TIME_BUDGET_SECONDS = env_int("RESPONSE_TIMING_TIME_BUDGET_SECONDS", 240,
                                              minimum=5, maximum=280)
FOLLOWUPS_TIME_BUDGET_SECONDS = env_int("FOLLOWUPS_TIME_BUDGET_SECONDS", 90, minimum=5,
                                        maximum=110)
FOLLOWUPS_LOCK_SECONDS = env_int("FOLLOWUPS_LOCK_SECONDS", 180, minimum=120, maximum=3600)

# --- HTTP, static, admin ---------------------------------------------------------------------
USE_TZ = True
TIME_ZONE = "UTC"
# Every time in the admin to the second, with its zone (dispatch_project/formats/en/formats.py).
FORMAT_MODULE_PATH = ["dispatch_project.formats"]
LANGUAGE_CODE = "en-us"
USE_I18N = True
STATIC_URL = "static/"
# ``manage.py collectstatic`` writes here (at build or release time); whitenoise serves it,
# compressed, from every web process.
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(VAR_DIR / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")
# HTTPS (docs/deploy.md "Production settings"). Outside DEBUG the defaults are the safe ones:
# HTTP redirected to HTTPS and cookies sent over HTTPS only. HSTS is sticky in browsers, so it is
# opted into with DJANGO_SECURE_HSTS_SECONDS. Behind a proxy that terminates TLS, set
# DJANGO_SECURE_PROXY_SSL_HEADER=true so X-Forwarded-Proto: https counts as HTTPS (only when
# the proxy sets that header itself and strips a client's).
if env_bool("DJANGO_SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", not DEBUG)
# Probes stay answerable over plain HTTP from inside the cluster (kubelet, load balancers).
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^healthz/", r"^readyz$"]
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", False)

# --- Observability (docs/observability.md) ----------------------------------------------------
# /metrics: open unless METRICS_TOKEN is set (then "Authorization: Bearer <token>").
METRICS_TOKEN = env_secret("METRICS_TOKEN")
# The read API (/api/v1/): a staff user's token ("Authorization: Token <key>" or "Bearer <key>",
# manage.py drf_create_token <username>) or a staff session. Anonymous: 401.
REST_FRAMEWORK = {
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "cron.api.auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "dispatch read API",
    "DESCRIPTION": "Crons, dispatch windows, runs and webhook events (read-only).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAdminUser"],
}

# One log stream: one JSON object per line (LOG_FORMAT=json, the default) or readable text
# (LOG_FORMAT=text, for development), from the web and the cluster processes alike, Django-Q's
# own lines included (its logger gets our handler, so it adds none of its own).
LOG_FORMAT = env_str("LOG_FORMAT", "json").lower() or "json"
if LOG_FORMAT not in ("json", "text"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"structured": {"()": "dispatch_project.logging.StructuredFormatter",
                                  "output": LOG_FORMAT}},
    # A run's fields (correlation id, run id, ...) on every line written while it runs.
    "filters": {"run_fields": {"()": "ledger.log_context.LogContextFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured",
                             "filters": ["run_fields"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper() or "INFO"},
    "loggers": {
        # Django's own handlers (installed before ours) replaced by nothing: its lines reach
        # the root's handler once.
        "django": {"handlers": [], "propagate": True},
        "django.server": {"handlers": [], "propagate": True},
        "django-q": {"handlers": ["console"], "propagate": False,
                     "level": env_str("Q_LOG_LEVEL", "WARNING").upper() or "WARNING"},
    },
}
