"""Test data for the web: ratings made now (so that the default period shows them), uploaded
through the real ingest API with an agent key."""

from __future__ import annotations

import time
from typing import Any

from serverlib import call

LEVELS = [0, 40, 60, 80, 100]


def rating(serial: str, seq: int, score: int, *, staff: str = "S001", flags: int = 0,
           ago_s: float = 60.0) -> dict[str, Any]:  # fmt: skip
    at = int((time.time() - ago_s) * 1000)
    return {
        "serial": serial, "journal_seq": seq, "boot_id": 1, "uptime_ms": seq * 1000,
        "time_ms": at, "time_exact": True, "score": score, "key_count": 5,
        "level_value": LEVELS[score - 1], "staff_id": staff, "prompt_id": seq, "flags": flags,
    }  # fmt: skip


def upload(base: str, key: str, **body: Any) -> dict[str, Any]:
    status, answer = call(base, "/api/v1/ingest/batch", key, body)
    assert status == 200, answer
    assert isinstance(answer, dict)
    return answer
