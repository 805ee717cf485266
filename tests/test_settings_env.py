"""Environment parsing: errors name the variable; flags, secrets and windows as the contract says."""

import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from dispatch_project import env


@pytest.mark.parametrize("raw", ["1", "true", "YES", " on ", "True\n"])
def test_env_bool__true_words(raw):
    assert env.env_bool("FLAG", False, environ={"FLAG": raw}) is True


@pytest.mark.parametrize("raw", ["0", "false", "No", " off\n"])
def test_env_bool__false_words(raw):
    assert env.env_bool("FLAG", True, environ={"FLAG": raw}) is False


def test_env_bool__unset_or_blank_is_the_default():
    assert env.env_bool("FLAG", True, environ={}) is True
    assert env.env_bool("FLAG", False, environ={"FLAG": "  "}) is False


@pytest.mark.parametrize("raw", ["ture", "2", "enabled", "y"])
def test_env_bool__anything_else_is_an_error_naming_the_variable(raw):
    with pytest.raises(ImproperlyConfigured, match="BACKGROUND_JOBS_USE_QUEUE"):
        env.env_bool("BACKGROUND_JOBS_USE_QUEUE", True, environ={"BACKGROUND_JOBS_USE_QUEUE": raw})


def test_env_int__clamps_and_rejects_words():
    environ = {"W": "5", "X": "99999", "Y": "sixty"}
    assert env.env_int("W", 60, minimum=15, maximum=3600, clamp=True, environ=environ) == 15
    assert env.env_int("X", 60, minimum=15, maximum=3600, clamp=True, environ=environ) == 3600
    with pytest.raises(ImproperlyConfigured, match="Y="):
        env.env_int("Y", 60, environ=environ)


def test_env_secret__trimmed_and_inner_whitespace_is_an_error():
    assert env.env_secret("CRON_SECRET", environ={"CRON_SECRET": "  abc\n"}) == "abc"
    with pytest.raises(ImproperlyConfigured, match="CRON_SECRET"):
        env.env_secret("CRON_SECRET", environ={"CRON_SECRET": "ab c"})


def test_env_secret_list__rotation():
    environ = {"WEBHOOK_TOKEN": " one, two ,,"}
    assert env.env_secret_list("WEBHOOK_TOKEN", environ=environ) == ["one", "two"]


def settings_error(**variables) -> str:
    """Import the settings in a fresh interpreter with these variables; its stderr."""
    code = "import dispatch_project.settings"
    base = {"PATH": "/usr/bin:/bin", "DJANGO_SECRET_KEY": "k" * 40}
    result = subprocess.run([sys.executable, "-c", code], env={**base, **variables},
                            capture_output=True, text=True, timeout=60)
    return result.stderr if result.returncode else ""


def test_settings__a_bad_flag_stops_start_up_naming_it():
    assert "CRON_FOLLOWUPS_USE_QUEUE" in settings_error(CRON_FOLLOWUPS_USE_QUEUE="maybe")


def test_settings__a_bad_window_override_stops_start_up():
    assert "CRON_FOLLOWUPS_DISPATCH_WINDOW_SECONDS" in settings_error(
        CRON_FOLLOWUPS_DISPATCH_WINDOW_SECONDS="1m")


def test_settings__secret_with_inner_whitespace_stops_start_up():
    assert "CRON_SECRET" in settings_error(CRON_SECRET="two words")


def test_settings__log_format_is_json_or_text():
    """Any other LOG_FORMAT stops start-up naming it; METRICS_TOKEN is a secret like the rest."""
    assert "LOG_FORMAT" in settings_error(LOG_FORMAT="xml")
    assert "METRICS_TOKEN" in settings_error(METRICS_TOKEN="two words")


def test_settings__missing_secret_key_says_how_to_fix():
    code = "import dispatch_project.settings"
    result = subprocess.run([sys.executable, "-c", code], env={"PATH": "/usr/bin:/bin"},
                            capture_output=True, text=True, timeout=60)
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_settings__window_overrides_are_clamped(settings):
    """CRON_<NAME>_DISPATCH_WINDOW_SECONDS outside [15, 3600] is clamped, not refused."""
    code = ("import dispatch_project.settings as s; "
            "print(s.CRON_REPORT_DISPATCH_WINDOW_SECONDS, s.BACKGROUND_JOBS_DISPATCH_WINDOW_SECONDS)")
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": "/usr/bin:/bin", "DJANGO_SECRET_KEY": "k" * 40,
             "CRON_REPORT_DISPATCH_WINDOW_SECONDS": "5",
             "BACKGROUND_JOBS_DISPATCH_WINDOW_SECONDS": "7200"},
        capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["15", "3600"], result.stderr


def database_options(**variables) -> str:
    code = "import dispatch_project.settings as s; print(s.DATABASES['default'].get('OPTIONS'))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": "/usr/bin:/bin", "DJANGO_SECRET_KEY": "k" * 40, **variables},
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_settings__postgresql_connections_are_persistent_and_health_checked():
    """No prepared statements (safe behind any pooler); persistent connections checked before
    reuse, so a restarted database costs a failed check, not a failed request."""
    url = "postgres://postgres@127.0.0.1:5432/anything"
    assert "prepare_threshold" not in database_options(DATABASE_URL=url)
    code = ("import dispatch_project.settings as s; d = s.DATABASES['default']; "
            "print(d['CONN_MAX_AGE'], d['CONN_HEALTH_CHECKS'])")
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": "/usr/bin:/bin", "DJANGO_SECRET_KEY": "k" * 40, "DATABASE_URL": url},
        capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["600", "True"], result.stderr
