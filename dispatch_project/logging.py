"""One log line per event, with the machine-readable fields passed in ``extra``.

``LOG_FORMAT=json`` (the default): one JSON object per line, for log pipelines::

    {"time": "2026-02-17T19:31:00.123Z", "level": "INFO", "logger": "cron.services",
     "message": "cron dispatched", "action": "cron_dispatched", "cron": "background-jobs",
     "dispatch_key": "...", "correlation_id": "...", "task_ids": [...]}

``LOG_FORMAT=text``: ``time level logger message {"action": ..., ...}`` for humans.
"""

import json
import logging
from datetime import datetime, timezone

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# The fields operators search by come first, in this order; any other extra follows, sorted.
FIELDS = ("action", "cron", "function", "dispatch_key", "correlation_id", "run_id", "attempt",
          "event_id")
# One encoder for every line (``json.dumps`` with options builds a new one each call).
_EXTRA = json.JSONEncoder(default=str, sort_keys=True)
_LINE = json.JSONEncoder(default=str, ensure_ascii=False)


def utc_millis(created: float) -> str:
    moment = datetime.fromtimestamp(created, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class StructuredFormatter(logging.Formatter):
    """JSON lines (``output="json"``) or ``time level logger message {extra}`` (``"text"``)."""

    def __init__(self, output: str = "json", **kwargs):
        super().__init__(**kwargs)
        self.output = output

    def format(self, record: logging.LogRecord) -> str:
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if self.output == "text":
            return self._text(record, extra)
        line = {"time": utc_millis(record.created), "level": record.levelname,
                "logger": record.name, "message": record.getMessage()}
        line.update((name, extra.pop(name)) for name in FIELDS if name in extra)
        line.update(sorted(extra.items()))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return _LINE.encode(line)

    def _text(self, record: logging.LogRecord, extra: dict) -> str:
        line = f"{self.formatTime(record)} {record.levelname} {record.name} {record.getMessage()}"
        if extra:
            line += " " + _EXTRA.encode(extra)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line
