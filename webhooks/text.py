"""Provider text made safe for a text column: NUL removed, lone surrogates replaced, bounded.

PostgreSQL refuses both in text (SQLite accepts them), so everything a provider sends passes
through here before it reaches a column; the raw body keeps the original bytes.
"""

import re

REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(value, *, max_chars: int | None = None) -> str:
    """``value`` as clean text ("" for None, objects and lists); numbers as their decimal text."""
    if value is None or isinstance(value, (dict, list, bool)):
        return ""
    text = value if isinstance(value, str) else str(value)
    text = _SURROGATE.sub(REPLACEMENT, text.replace("\x00", ""))
    if max_chars is not None:
        text = text[:max_chars]
    return text
