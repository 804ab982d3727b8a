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
# characters that change how the text around them is shown (bidirectional overrides such as
# U+202E, zero-width and joiner marks, the byte-order mark): in an identifier they make two
# different ids look alike, or one look like another
FORMAT_CLASS: Final = r"\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff"
# an identifier typed by people (a staff id): printable, no format characters, and no space at
# either end (so that "  " is not an id, nor " 007" another "007"); empty is allowed
_ID_CHAR = f"[^\\s{CONTROL_CLASS}{FORMAT_CLASS}]"
IDENTIFIER_PATTERN: Final = f"^(?:{_ID_CHAR}(?:[^{CONTROL_CLASS}{FORMAT_CLASS}]*{_ID_CHAR})?)?$"
# in a form's text (a comment, a note), tab and line breaks are text
_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def has_control(text: str, *, lines: bool = False) -> bool:
    """Whether ``text`` holds a control character (``lines``: tab, CR and LF allowed)."""
    return (_CONTROL_IN_TEXT if lines else _CONTROL).search(text) is not None


def printable(text: str) -> str:
    """``text`` with every control character replaced by U+FFFD (for logs: kept, not refused)."""
    return _CONTROL.sub("\ufffd", text)
