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
# in a form's text (a comment, a note), tab and line breaks are text
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def has_control(text: str, *, lines: bool = False) -> bool:
    """Whether ``text`` holds a control character (``lines``: tab, CR and LF allowed)."""
    return (_CONTROL_IN_TEXT if lines else _CONTROL).search(text) is not None


def printable(text: str) -> str:
    """``text`` with every control character replaced by U+FFFD (for logs: kept, not refused)."""
    return _CONTROL.sub("\ufffd", text)
