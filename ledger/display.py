"""How operators' surfaces (admin lists, the status page, commands) write times, ages,
durations and errors: seconds and UTC, short and plain."""

from datetime import UTC, datetime

from django.utils.html import format_html


def utc_seconds(moment: datetime | None) -> str:
    """``2026-02-17 19:31:05 UTC``; ``-`` for none."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"


def age(moment: datetime | None, *, now) -> str:
    """How long ago, to the second: ``42s``, ``3m 05s``, ``2h 14m``, ``3d 4h``."""
    if moment is None:
        return "-"
    seconds = max(0, int((now - moment).total_seconds()))
    return seconds_text(seconds)


def seconds_text(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h"


def duration(ms: int | None) -> str:
    """``850 ms``, ``12.4 s``, ``3m 05s``."""
    if ms is None:
        return "-"
    if ms < 1000:
        return f"{ms} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    return seconds_text(ms / 1000)


def first_line(text: str, limit: int = 200) -> str:
    """The first non-blank line of an error, bounded (for lists and tables)."""
    for line in (text or "").splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""


def alert(text: str, *, title: str = ""):
    """Text an operator must not miss (a run past its deadline): red, bold."""
    return format_html('<strong class="ops-alert" style="color:#ba2121" title="{}">{}</strong>',
                       title, text)
