"""The operations settings that ``settings.py`` reads from the environment (no Django here:
the settings module imports it before Django is set up).

* ``RATEPAD_LOG_FORMAT`` (``text``; ``json``: one JSON object a line, for a log collector),
  set by ``--log-format``.
* ``RATEPAD_METRICS_ALLOW`` (``127.0.0.1,::1``): the addresses and networks that may read
  ``/metrics`` (``*``: any); ``RATEPAD_METRICS_TOKEN``: when set, a scrape must also send
  ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LOG_FORMATS = ("text", "json")


def networks(text: str) -> tuple[Network, ...]:
    """``10.0.0.0/8,127.0.0.1,::1`` → the networks; ``*`` → every address (ValueError if bad)."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if items == ["*"]:
        return (ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_network("::/0"))
    if not items:
        raise ValueError(text)
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def log_format(text: str) -> str:
    if text not in LOG_FORMATS:
        raise ValueError(text)
    return text


def logging_config(fmt: str) -> dict[str, Any]:
    """Django's ``LOGGING``: warnings and errors to stderr, as text or as JSON lines (time,
    level, logger, message, and the traceback as ``exc_info``)."""
    formatter: dict[str, Any] = {"format": "%(message)s"}  # as Python's default
    if fmt == "json":
        formatter = {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "{levelname}{name}{message}",
            "style": "{",
            "timestamp": "time",
            "rename_fields": {"levelname": "level", "name": "logger"},
            "json_ensure_ascii": False,  # Chinese names stay readable
        }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"ratepad": formatter},
        # a client's 4xx without a traceback, its path without control characters
        "filters": {"client_errors": {"()": "ratepad_server.ops.logfilters.ClientErrors"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "ratepad",
                "filters": ["client_errors"],
            }
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }


def metrics_dir(text: str) -> str:
    """``PROMETHEUS_MULTIPROC_DIR``: made if missing (ValueError if it cannot be)."""
    if text:
        try:
            os.makedirs(text, exist_ok=True)
        except OSError as exc:
            raise ValueError(text) from exc
        if not os.access(text, os.W_OK):
            raise ValueError(text)
    return text
