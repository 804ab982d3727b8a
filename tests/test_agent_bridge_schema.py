"""A schema-driven client exercises every operation of the generated OpenAPI document against a
running sandbox (schemathesis, bounded): responses conform to the document (status codes,
content types, bodies), schema-valid requests are accepted, and nothing fails inside."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import ratepad
from ratepad.agent.sandbox import Sandbox

SCHEMATHESIS = shutil.which("schemathesis", path=str(Path(sys.executable).parent))


class Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    ratepad.sim.reset()
    with Sandbox(2, listen=("127.0.0.1", 0), answer_after=(0.05, 0.2), seed=3) as sb:
        yield sb
    ratepad.sim.reset()


@pytest.mark.skipif(SCHEMATHESIS is None, reason="schemathesis is not installed (extra 'dev')")
def test_every_operation_conforms_to_the_document(sandbox: Sandbox, tmp_path: Path) -> None:
    assert SCHEMATHESIS is not None
    errors = Errors()
    logging.getLogger("ratepad.bridge").addHandler(errors)
    try:
        out = _schemathesis(sandbox, tmp_path)
        if out.returncode != 0 and _only_network_errors(out.stdout):
            # a malformed request that uvicorn's HTTP parser refuses before the bridge sees it
            # ("Invalid HTTP request received") is answered 400 and the connection closed; with
            # request bytes still unread the close can be a TCP reset, which the client reports
            # as a network error. Not the bridge's doing: the same seed once more.
            out = _schemathesis(sandbox, tmp_path)
    finally:
        logging.getLogger("ratepad.bridge").removeHandler(errors)
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-2000:]
    assert "14 selected" in out.stdout  # every operation but the endless stream
    assert not [r.getMessage() for r in errors.records]  # no internal error, no store error


def _schemathesis(sandbox: Sandbox, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    assert SCHEMATHESIS is not None
    return subprocess.run(
        [
            SCHEMATHESIS,
            "run",
            f"{sandbox.url}/v1/openapi.json",
            "-H",
            f"Authorization: Bearer {sandbox.token}",
            "--max-examples",
            "5",
            "--seed",
            "1",
            "--request-timeout",
            "15",
            # the stream never ends by itself; HEAD /v1/events stands for it
            "--exclude-operation-id",
            "streamEvents",
            # every check but "no 5xx": 503 (keypad not connected) and 504 (no rating in
            # time) are documented answers; failures inside are caught below instead
            "--checks",
            "all",
            "--exclude-checks",
            "not_a_server_error",
            "--phases",
            "examples,coverage,fuzzing",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
    )


def _only_network_errors(stdout: str) -> bool:
    """Errors, no failed check, and every error a network error."""
    errors = [
        line
        for line in stdout.splitlines()
        if line.strip().startswith("🚫")
        and "Network Error" not in line
        and "Coverage" not in line
        and "Examples" not in line
        and "Fuzzing" not in line
    ]
    return "Network Error" in stdout and " failed" not in stdout and not errors
