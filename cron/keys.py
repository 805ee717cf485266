"""Window math, dispatch keys, params hashes and task ids, exactly as CONTRACT.md says."""

import hashlib
import json
import math
import re
from datetime import UTC, datetime

KEY_VERSION = "v1"
CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def window_start(requested_at: datetime, window_seconds: int) -> datetime:
    """floor(requestedAt / windowSeconds) * windowSeconds, in UTC."""
    epoch = math.floor(requested_at.timestamp() / window_seconds) * window_seconds
    return datetime.fromtimestamp(epoch, tz=UTC)


def iso_seconds(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_millis(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` (what JavaScript's toISOString prints)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# One encoder for every call (``json.dumps`` with options builds a new one each time).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_params(params: dict) -> str:
    """Keys sorted, ``,`` and ``:`` separators, values as strings."""
    return _CANONICAL.encode({str(k): str(v) for k, v in params.items()})


def params_hash(params: dict) -> str:
    """Lone surrogates (a command's ``--param``) hash as their code points, never raise."""
    return hashlib.sha256(
        canonical_params(params).encode("utf-8", "surrogatepass")).hexdigest()[:16]


def dispatch_key(cron_name: str, window_seconds: int, start: datetime, params: dict) -> str:
    key = f"{cron_name}:{KEY_VERSION}:{window_seconds}:{iso_seconds(start)}"
    return f"{key}:{params_hash(params)}" if params else key


def task_id(prefix: str, key: str) -> str:
    return f"{prefix}:{hashlib.sha256(key.encode('utf-8')).hexdigest()[:24]}"


def correlation_id_or_none(value: str | None) -> str | None:
    if value and CORRELATION_ID.fullmatch(value):  # match() let "id\n" through ($)
        return value
    return None
