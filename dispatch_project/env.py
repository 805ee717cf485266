"""Environment parsing: the only place that reads os.environ.

Every reader raises ``ImproperlyConfigured`` naming the variable, so a bad deployment fails at
start-up with a message that says what to fix, never later with a silently wrong value (the old
system read ``"true\\n"`` as false).
"""

import os
import re

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def env_str(name: str, default: str = "", environ=os.environ) -> str:
    return environ.get(name, default).strip()


def env_bool(name: str, default: bool, environ=os.environ) -> bool:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(
        f"{name}={raw!r} is not a boolean: use one of 1/true/yes/on or 0/false/no/off."
    )


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None,
            clamp: bool = False, environ=os.environ) -> int:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from None
    if minimum is not None and value < minimum:
        if not clamp:
            raise ImproperlyConfigured(f"{name}={value} is below the minimum {minimum}.")
        value = minimum
    if maximum is not None and value > maximum:
        if not clamp:
            raise ImproperlyConfigured(f"{name}={value} is above the maximum {maximum}.")
        value = maximum
    return value


def env_secret(name: str, environ=os.environ) -> str:
    """A secret, trimmed; inner whitespace is a copy-paste accident and a startup error."""
    value = environ.get(name, "").strip()
    if re.search(r"\s", value):
        raise ImproperlyConfigured(
            f"{name} contains whitespace inside the value; re-copy the secret without spaces or "
            "line breaks."
        )
    return value


def env_secret_list(name: str, environ=os.environ) -> list[str]:
    """Comma-separated secrets (rotation): each trimmed, blanks dropped, none with inner spaces."""
    values = []
    for part in environ.get(name, "").split(","):
        part = part.strip()
        if not part:
            continue
        if re.search(r"\s", part):
            raise ImproperlyConfigured(
                f"{name} has a value with whitespace inside it; separate secrets with commas only."
            )
        values.append(part)
    return values


def env_list(name: str, default: list[str] | None = None, environ=os.environ) -> list[str]:
    raw = environ.get(name)
    if raw is None:
        return list(default or [])
    return [part.strip() for part in raw.split(",") if part.strip()]


def env_matching(pattern: str, environ=os.environ) -> dict[str, str]:
    """Every variable whose whole name matches ``pattern``: for per-cron overrides."""
    regex = re.compile(pattern)
    return {name: value for name, value in environ.items() if regex.fullmatch(name)}


def env_is_set(name: str, environ=os.environ) -> bool:
    """Whether the environment gives ``name`` a value (for reports of where a setting comes
    from: ``manage.py preflight``)."""
    return bool(environ.get(name, "").strip())
