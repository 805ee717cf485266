"""Fields every log line written during a run carries: its run id, function, attempt,
correlation id and dispatch key, whoever writes the line (the job's own code, a service it
calls, Django-Q). The runner sets them when it claims a run and clears them when it finishes
(``ledger.observe``); ``LogContextFilter`` on the log handler adds them to each record that does
not carry them already.
"""

import logging
from contextvars import ContextVar

_fields: ContextVar[dict | None] = ContextVar("dispatch_log_fields", default=None)


def log_fields_set(**fields) -> None:
    _fields.set({name: value for name, value in fields.items() if value not in (None, "")})


def log_fields_clear() -> None:
    _fields.set(None)


class LogContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in (_fields.get() or {}).items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True
