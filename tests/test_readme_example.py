"""The pytest guide's example (docs/guide/pytest.md) passes as written, in a fresh directory."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "docs" / "guide" / "pytest.md"


def test_readme_pytest_example(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- pytest-example -->\n```python\n(.*?)```", text, re.S)
    assert match, "the pytest guide lost its example"
    (tmp_path / "test_counter.py").write_text(match.group(1), encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "3 passed" in out.stdout
