"""Windows this process already knows were handed over, to answer their duplicates from memory.

A window that reached ``enqueued`` or ``inline-emergency`` never changes again (only an
``enqueue-failed`` one is taken over), so a duplicate of it can be answered without a query:
a scheduler's retry storm or a fleet of web processes firing the same tick costs nothing. The
database still decides every first dispatch; an entry is dropped once its window has ended, and
at most ``MAX_ENTRIES`` are kept per process.
"""

import threading
from collections import OrderedDict
from datetime import timedelta

from cron.models import DispatchWindow, WindowStatus

MAX_ENTRIES = 1024
FINAL_STATUSES = frozenset({WindowStatus.ENQUEUED, WindowStatus.INLINE_EMERGENCY})

_lock = threading.Lock()
_windows: "OrderedDict[str, DispatchWindow]" = OrderedDict()


def known_window_remember(window: DispatchWindow) -> None:
    if window.status not in FINAL_STATUSES:
        return
    with _lock:
        _windows[window.dispatch_key] = window
        _windows.move_to_end(window.dispatch_key)
        while len(_windows) > MAX_ENTRIES:
            _windows.popitem(last=False)


def known_window_recall(key: str, *, now) -> DispatchWindow | None:
    with _lock:
        window = _windows.get(key)
        if window is None:
            return None
        if window.window_start + timedelta(seconds=window.window_seconds) <= now:
            del _windows[key]
            return None
        return window


def known_windows_forget() -> None:
    """Forget everything (tests, whose databases are emptied between them)."""
    with _lock:
        _windows.clear()
