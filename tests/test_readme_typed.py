"""The driver guide's examples (docs/guide/driver.md) type-check under mypy --strict and run as
written."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "docs" / "guide" / "driver.md"


def examples() -> list[str]:
    text = README.read_text(encoding="utf-8")
    found = re.findall(r"<!-- typed-example -->\n```python\n(.*?)```", text, re.S)
    assert len(found) >= 2, "the driver guide lost its typed examples"
    return found


def test_readme_examples_pass_mypy_strict(tmp_path: Path) -> None:
    paths = []
    for i, code in enumerate(examples()):
        path = tmp_path / f"example_{i}.py"
        path.write_text(code, encoding="utf-8")
        paths.append(str(path))
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--follow-imports=silent",
         *paths],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        # mypy cannot follow setuptools' editable-install finder: point it at the sources
        # (an installed wheel needs nothing: ratepad ships py.typed)
        env={**os.environ, "MYPYPATH": str(ROOT / "host")},
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr


def test_readme_examples_run(tmp_path: Path) -> None:
    for i, code in enumerate(examples()):
        path = tmp_path / f"example_{i}.py"
        path.write_text(code, encoding="utf-8")
        out = subprocess.run(
            [sys.executable, str(path)], capture_output=True, text=True, timeout=60, cwd=tmp_path
        )
        assert out.returncode == 0, out.stdout + out.stderr
