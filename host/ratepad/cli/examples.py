"""`ratepad examples DIR`: write the example files (a scenario, a suite, a fleet profile, a pytest
file, an agent.toml, an organisation, a teller page) into a new folder, to try every quick
start from."""

from __future__ import annotations

import argparse
import shutil
from importlib.resources import files
from pathlib import Path
from typing import Any

from .common import EXIT_OK, UsageError

TELLER_PAGE = ("index.html", "app.js", "page.css")  # the bridge's example page, as shipped


def write_examples(dest: Path) -> list[Path]:
    """Copy the examples into ``dest`` (created; it must not exist or be empty); the paths."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UsageError(f"{dest}: exists and is not an empty folder (give a new one)")
    source = files("ratepad") / "examples"
    created = not dest.exists()
    written: list[Path] = []

    def copy(node: Any, to: Path) -> None:
        to.mkdir(parents=True, exist_ok=True)
        for item in node.iterdir():
            if item.name.startswith(("_", ".")):
                continue
            if item.is_dir():
                copy(item, to / item.name)
            else:
                (to / item.name).write_bytes(item.read_bytes())
                written.append(to / item.name)

    try:
        copy(source, dest)
        page = files("ratepad") / "agent" / "bridge" / "static"
        (dest / "teller").mkdir(exist_ok=True)
        for name in TELLER_PAGE:
            (dest / "teller" / name).write_bytes((page / name).read_bytes())
            written.append(dest / "teller" / name)
    except OSError as exc:
        if created:
            shutil.rmtree(dest, ignore_errors=True)
        raise UsageError(f"{dest}: {exc.strerror or exc}") from None
    return written


def cmd_examples(args: argparse.Namespace) -> int:
    dest = Path(args.dir)
    for path in write_examples(dest):
        print(path)
    print(f"ratepad examples: {dest}/README.md says what to run with each", flush=True)
    return EXIT_OK


def register(sub: Any) -> None:
    """Add ``examples``."""
    p = sub.add_parser(
        "examples",
        help="write example files (scenario, suite, fleet, pytest, agent.toml, org.toml) to DIR",
        description="Write the example files every quick start uses into DIR (a new or empty "
        "folder): scenario.json, suite/, fleet.toml, test_counter.py, agent.toml, org.toml "
        "and teller/, with a README saying what to run with each. Example: ratepad examples "
        "my-tests && cd my-tests && ratepad sim scenario.json",
    )
    p.add_argument("dir", metavar="DIR", help="the folder to create, e.g. my-tests")
    p.set_defaults(func=cmd_examples)
