"""Start-up for manage.py and the WSGI/ASGI entry points: a configuration error is one line
naming the variable, not a traceback."""

import os
import sys


def settings_or_exit() -> None:
    """Load the settings now; on ImproperlyConfigured (an environment variable that does not
    parse: settings.py and dispatch_project/env.py name it) print one line and exit 2."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dispatch_project.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        settings.INSTALLED_APPS  # noqa: B018  (reading a setting loads the module)
    except ImproperlyConfigured as error:
        sys.stderr.write(f"Configuration error: {error}\n")
        raise SystemExit(2) from None
