"""The one table of rating flags (``ratepad.flags``): it covers every flag the wire carries,
with the wire's names, the server's own above them; names and bits convert both ways; the
agent's JSON spells flags from it; and it imports neither the USB codec nor Django."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ratepad import flags
from ratepad.agent.store import flag_names
from ratepad.wire import codec


def test_every_wire_flag_is_in_the_table_under_its_wire_name() -> None:
    wire = {int(f): (f.name or "").lower() for f in codec.RatingFlags}
    table = {f.bit: f.name for f in flags.FLAGS}
    assert {bit: table.get(bit) for bit in wire} == wire
    assert len(table) == len(flags.FLAGS)  # one bit per flag


def test_server_flags_sit_above_the_wire_bits() -> None:
    wire_bits = 0
    for f in codec.RatingFlags:
        wire_bits |= int(f)
    server_only = [f for f in flags.FLAGS if not f.bit & wire_bits]
    assert [f.name for f in server_only] == ["appeal_upheld"]
    assert all(f.bit >= 1 << 16 for f in server_only)  # the wire's flags field is 16 bits
    assert flags.APPEAL_UPHELD == flags.BY_NAME["appeal_upheld"].bit == 1 << 24


def test_which_flags_leave_the_kpis() -> None:
    rf = flags.RatingFlags
    excluded = int(rf.REPEAT | rf.MULTI_KEY | rf.STUCK_KEY) | (1 << 24)
    assert excluded == flags.KPI_EXCLUDED
    assert [f.name for f in flags.ROLLUP_FLAGS] == [
        "unprompted", "repeat", "multi_key", "stuck_key", "no_staff", "appeal_upheld",
    ]  # fmt: skip


def test_names_and_bits_convert_both_ways() -> None:
    every = 0
    for f in flags.FLAGS:
        every |= f.bit
        assert flags.names(f.bit) == [f.name]
        assert flags.bits([f.name]) == f.bit
    assert flags.names(every) == [f.name for f in flags.FLAGS]
    assert flags.bits(flags.names(every)) == every
    assert flags.names(0) == [] and flags.bits([]) == 0
    assert flags.names(1 << 30) == []  # a bit nobody knows is not named
    with pytest.raises(ValueError, match="unknown rating flag 'sticky'"):
        flags.bits(["repeat", "sticky"])


def test_the_agent_spells_flags_from_the_table() -> None:
    both = int(flags.RatingFlags.MULTI_KEY) | flags.APPEAL_UPHELD
    assert flag_names(both) == ["multi_key", "appeal_upheld"]


def _imports(path: Path) -> set[str]:
    """The modules a source file imports (relative ones as written, with their dots)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            out.add("." * node.level + (node.module or ""))
    return out


def test_the_table_imports_neither_the_usb_codec_nor_django() -> None:
    # ``import ratepad`` itself loads the codec (the keypad API); the table's own module needs
    # only the wire's generated values, so that the server does not depend on the codec
    assert _imports(Path(flags.__file__)) == {
        "__future__", "functools", "collections.abc", "dataclasses", "typing", ".wire.values",
    }  # fmt: skip


def test_the_readme_flag_table_is_the_table() -> None:
    """The documentation's table of flags (the server guide) says what
    ``ratepad.flags.FLAGS`` says, row for row."""
    page = Path(__file__).resolve().parents[1] / "docs" / "guide" / "server.md"
    readme = page.read_text(encoding="utf-8")
    head = "| flag | meaning | out of the KPIs |"
    assert head in readme
    rows = []
    for line in readme.split(head, 1)[1].splitlines()[2:]:
        if not line.startswith("| `"):
            break
        name, meaning, out = (cell.strip() for cell in line.strip("|").split("|"))
        rows.append((name.strip("`"), meaning, out == "yes"))
    assert rows == [(f.name, f.meaning, f.kpi_excluded) for f in flags.FLAGS]
