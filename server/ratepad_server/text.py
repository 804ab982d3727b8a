"""Text from outside (URLs, JSON, form fields, uploads) must hold no control characters: NUL
above all, which PostgreSQL's text type refuses with an error instead of storing it. One
character class for the whole server: the upload schema's pattern, the URL check of every
request and the audit log's cleaning derive from it."""

from __future__ import annotations

import re
from typing import Final

# C0 controls (NUL, tab, newline included), DEL and the C1 controls
CONTROL_CLASS: Final = r"\x00-\x1f\x7f-\x9f"
PRINTABLE_PATTERN: Final = rf"^[^{CONTROL_CLASS}]*$"
_CONTROL = re.compile(f"[{CONTROL_CLASS}]")


def has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def printable(text: str) -> str:
    """``text`` with every control character replaced by U+FFFD (for logs: kept, not refused)."""
    return _CONTROL.sub("\ufffd", text)
