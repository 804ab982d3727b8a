"""Regenerate (or, with --check, verify) every file generated from the schema
(protocol/ratepad_protocol/schema.py).

python -m ratepad_protocol.generate          # write the generated files
python -m ratepad_protocol.generate --check  # exit 1 if any generated file is stale
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from . import gen_firmware, gen_host, gen_lua
from .model import Model, build_model

ROOT = Path(__file__).resolve().parents[2]

TARGETS: dict[str, Callable[[Model], str]] = {
    "host/ratepad/wire/codec.py": gen_host.generate,
    "host/ratepad/wire/values.py": gen_host.generate_values,
    "firmware/rpfw/codec.py": gen_firmware.generate,
    "wireshark/ratepad.lua": gen_lua.generate,
}


def _format_python(source: str) -> str:
    """Run ruff's formatter so generated Python reads like the rest of the code base."""
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False, dir=ROOT) as tmp:
        tmp.write(source)
    path = Path(tmp.name)
    try:
        ruff = [sys.executable, "-m", "ruff"]
        config = ["--config", str(ROOT / "pyproject.toml")]
        fix = ["check", "--quiet", "--fix-only", "--select", "I", *config, str(path)]
        subprocess.run([*ruff, *fix], check=True)
        subprocess.run([*ruff, "format", "--quiet", *config, str(path)], check=True)
        return path.read_text(encoding="utf-8")
    finally:
        path.unlink()


def render() -> dict[str, str]:
    model = build_model()
    return {
        rel: _format_python(gen(model)) if rel.endswith(".py") else gen(model)
        for rel, gen in TARGETS.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if a generated file is stale")
    args = parser.parse_args(argv)
    stale = []
    for rel, text in render().items():
        path = ROOT / rel
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(rel)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            print(f"generated {rel}")
    if stale:
        print(f"stale generated files (run `make generate`): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
