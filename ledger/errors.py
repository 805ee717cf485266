"""Error text safe to show outside the process: no credentials, hosts or ports."""

import re

_URL_CREDENTIALS = re.compile(r"(\w+://)[^/@\s]+@")
_PASSWORD = re.compile(r"(password=)\S+", re.IGNORECASE)
_HOST_PORT = re.compile(r"\b[\w.-]+:\d{2,5}\b")
_ADDRESS = re.compile(r"(\bhost\w*\s*=?\s*|\bat\s+|\bto\s+)\"?[\w.:-]+\"?", re.IGNORECASE)


def error_public_message(error: BaseException, *, limit: int = 500) -> str:
    """The error's class and message with URL credentials, passwords, host names and ports
    replaced, bounded. Log the full error; return this one."""
    message = f"{type(error).__name__}: {error}".splitlines()[0] if str(error) else \
        type(error).__name__
    message = _URL_CREDENTIALS.sub(r"\1***@", message)
    message = _PASSWORD.sub(r"\1***", message)
    message = _HOST_PORT.sub("***", message)
    return _ADDRESS.sub(r"\1***", message)[:limit]
