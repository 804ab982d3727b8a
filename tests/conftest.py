from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))

VECTOR_FILES = sorted((ROOT / "protocol" / "vectors").glob("*.json"))


def load_vectors() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in VECTOR_FILES:
        out.extend(json.loads(path.read_text(encoding="utf-8")))
    return out


@pytest.fixture(scope="session")
def vectors() -> list[dict[str, Any]]:
    return load_vectors()


# The files that take longest (``--durations``, bench/RESULTS.md "The test suite's time"), in
# that order. Under pytest-xdist (``make unit``: files handed to the workers in collection
# order, --no-loadscope-reorder) they go first, so that none of them starts last and keeps one
# worker busy long after the others are done. A name missing here costs balance, not tests.
LONGEST_FIRST = (
    "tests/server/test_server_accounts.py",
    "tests/server/test_server_cli.py",
    "tests/server/web/test_web_permissions.py",
    "tests/server/test_casework.py",
    "tests/server/test_server_hygiene.py",
    "tests/server/test_server_permissions.py",
    "tests/test_rp2040_power_cut.py",
    "tests/server/test_server_offline_drain.py",
    "tests/test_littlefs_journal.py",
    "tests/test_rp2040_flash.py",
    "tests/server/test_server_exactly_once.py",
    "tests/test_rp2040_engine.py",
    "tests/server/test_server_failover.py",
    "tests/server/web/test_overview.py",
    "tests/test_fakes_vs_rp2040.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if hasattr(config, "workerinput"):  # a pytest-xdist worker: each sorts its collection alike
        rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
        items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))
    _skip_micropython_without_the_vm(items)


def _skip_micropython_without_the_vm(items: list[pytest.Item]) -> None:
    """Tests marked ``micropython`` need Node.js and the MicroPython npm package: without them
    they are skipped, with the reason (what is missing and how to install it)."""
    marked = [item for item in items if item.get_closest_marker("micropython")]
    if not marked:
        return
    from ratepad.sim.mpkeypad import vm_missing

    reason = vm_missing()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in marked:
        item.add_marker(skip)
