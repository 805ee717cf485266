"""One log line per event, with the machine-readable fields passed in ``extra``."""

import json
import logging

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# One encoder for every line (``json.dumps`` with options builds a new one each call).
_EXTRA = json.JSONEncoder(default=str, sort_keys=True)


class StructuredFormatter(logging.Formatter):
    """``time level logger message {"action": ..., "correlation_id": ...}``."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{self.formatTime(record)} {record.levelname} {record.name} {record.getMessage()}"
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if extra:
            line += " " + _EXTRA.encode(extra)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line
