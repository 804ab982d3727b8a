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
