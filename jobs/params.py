"""A cron's params as the job receives them (strings in ``payload["params"]``), parsed and
checked. A bad value raises InvalidParam, which fails the run at once with a message naming the
param, what it accepts and what it got."""

from dispatch_project.env import FALSE_WORDS, TRUE_WORDS
from jobs.exceptions import InvalidParam


def params_of(payload: dict) -> dict:
    params = payload.get("params") or {}
    if not isinstance(params, dict):
        raise InvalidParam(f"params must be an object, got {type(params).__name__}")
    return params


def param_int(params: dict, name: str, bounds: tuple[int, int, int]) -> int:
    """``bounds`` is (default, minimum, maximum); an absent or empty value is the default."""
    default, minimum, maximum = bounds
    raw = params.get(name)
    if raw is None or str(raw).strip() == "":
        return default
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise InvalidParam(f"{name} must be a whole number from {minimum} to {maximum}, "
                           f"got {str(raw)[:40]!r}") from None
    if not minimum <= value <= maximum:
        raise InvalidParam(f"{name} must be from {minimum} to {maximum}, got {value}")
    return value


def param_optional_id(params: dict, name: str) -> int | None:
    raw = params.get(name)
    if raw is None or str(raw).strip() == "":
        return None
    text = str(raw).strip()
    if not text.isdigit() or int(text) < 1:
        raise InvalidParam(f"{name} must be a positive whole number, got {text[:40]!r}")
    return int(text)


def param_bool(params: dict, name: str, default: bool = False) -> bool:
    raw = params.get(name)
    if raw is None or str(raw).strip() == "":
        return default
    word = str(raw).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise InvalidParam(f"{name} must be one of 1/true/yes/on or 0/false/no/off, "
                       f"got {str(raw)[:40]!r}")
