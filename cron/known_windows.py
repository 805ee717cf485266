"""Windows this process already knows were handed over, to answer their duplicates from memory.

A window that reached ``enqueued`` or ``inline-emergency`` never changes again (only an
``enqueue-failed`` one is taken over), so a duplicate of it can be answered without a query:
a scheduler's retry storm or a fleet of web processes firing the same tick costs nothing. One
exception: on Redis a window is written ``enqueued`` before its push and is given back
(``enqueue-failed``) if that push fails within ``conf.GIVE_BACK_SECONDS``
(``cron.services.HANDED_OVER_AT_COMMIT``), so a window another process read from the database
is kept with ``trusted_from``: until then it is only known to exist. The database still decides
every first dispatch; an entry is dropped once its window has ended, and at most
``MAX_ENTRIES`` are kept per process.
"""

import threading
from collections import OrderedDict
from datetime import datetime, timedelta

from cron.models import DispatchWindow, WindowStatus

MAX_ENTRIES = 1024
FINAL_STATUSES = frozenset({WindowStatus.ENQUEUED, WindowStatus.INLINE_EMERGENCY})

_lock = threading.Lock()
_windows: "OrderedDict[str, tuple[DispatchWindow, datetime | None]]" = OrderedDict()


def known_window_remember(window: DispatchWindow, *, trusted_from: datetime | None = None) -> None:
    """Keep a handed-over window; with ``trusted_from``, answer for it only from then on
    (before, ``known_window_exists`` only says that it exists)."""
    if window.status not in FINAL_STATUSES:
        return
    with _lock:
        _windows[window.dispatch_key] = (window, trusted_from)
        _windows.move_to_end(window.dispatch_key)
        while len(_windows) > MAX_ENTRIES:
            _windows.popitem(last=False)


def known_window_recall(key: str, *, now) -> DispatchWindow | None:
    """The window, when memory may answer a duplicate of ``key`` now."""
    entry = _entry(key, now)
    if entry is None or (entry[1] is not None and now < entry[1]):
        return None
    return entry[0]


def known_window_exists(key: str, *, now) -> bool:
    """Whether this process saw the window's row (trusted yet or not): it need not be inserted
    again, only read."""
    return _entry(key, now) is not None


def _entry(key: str, now) -> "tuple[DispatchWindow, datetime | None] | None":
    with _lock:
        entry = _windows.get(key)
        if entry is None:
            return None
        window = entry[0]
        if window.window_start + timedelta(seconds=window.window_seconds) <= now:
            del _windows[key]
            return None
        return entry


def known_windows_forget() -> None:
    """Forget everything (tests, whose databases are emptied between them)."""
    with _lock:
        _windows.clear()
