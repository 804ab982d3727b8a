"""Reference pages written from the code when the site is built (``reference/generated/``, never
edited by hand, not committed): the bridge's HTTP API from its OpenAPI document, the scenario
file schema, the environment variables from the docstrings of the modules that read them, the
wire protocol from its model and the Wireshark fields from the shipped dissector.

The environment-variable reference follows one rule: a module that reads ``RATEPAD_X`` says
what it is in its docstring (a bullet or paragraph naming it); ``settings_reference`` collects
them, and ``tests/test_docs.py`` fails on a variable read without one.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUT = Path(__file__).resolve().parents[1] / "reference" / "generated"
PACKAGES = {"host": ROOT / "host" / "ratepad", "server": ROOT / "server" / "ratepad_server"}
READ = re.compile(
    r"""(?:environ(?:\.get)?\s*[\[(]\s*|getenv\s*\(\s*|(?:integer|number|parsed)\(\s*)"""
    r"""["'](RATEPAD_[A-Z0-9_]+)["']|^\s*[A-Z_]+_ENV\s*=\s*["'](RATEPAD_[A-Z0-9_]+)["']""",
    re.MULTILINE,
)


# -- environment variables -------------------------------------------------------------------
def variables_read(package: Path) -> dict[str, list[Path]]:
    """Every ``RATEPAD_*`` variable the package's code reads, with the modules reading it."""
    found: dict[str, list[Path]] = {}
    for path in sorted(package.rglob("*.py")):
        for m in READ.finditer(path.read_text(encoding="utf-8")):
            found.setdefault(m.group(1) or m.group(2), []).append(path)
    return found


def _paragraphs(doc: str) -> Iterator[str]:
    """A docstring's bullets and paragraphs, each as one line of text."""
    block: list[str] = []
    for line in [*doc.splitlines(), ""]:
        starts_bullet = line.lstrip().startswith(("* ", "- "))
        if (not line.strip() or starts_bullet) and block:
            yield " ".join(part.strip() for part in block)
            block = []
        if line.strip():
            block.append(line.lstrip()[2:] if starts_bullet else line)


def descriptions(package: Path) -> dict[str, list[tuple[str, str]]]:
    """For each variable, the docstring paragraphs naming it: (module, text)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = [ast.get_docstring(tree) or ""]
        kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
        docs += [ast.get_docstring(n) or "" for n in ast.walk(tree) if isinstance(n, kinds)]
        module = ".".join(path.relative_to(package.parent).with_suffix("").parts)
        for doc in docs:
            for text in _paragraphs(doc):
                for name in set(re.findall(r"RATEPAD_[A-Z0-9_]+", text)):
                    out.setdefault(name, []).append((module.removesuffix(".__init__"), text))
    return out


def undocumented() -> list[str]:
    """Variables read somewhere without a docstring paragraph naming them (``test_docs``)."""
    missing = []
    for package in PACKAGES.values():
        described = descriptions(package)
        missing += [f"{name} ({paths[0].relative_to(ROOT)})"
                    for name, paths in sorted(variables_read(package).items())
                    if name not in described]  # fmt: skip
    return missing


def settings_reference() -> str:
    lines = [
        "# Environment variables",
        "",
        "Written from the code when this site is built: every `RATEPAD_*` variable a module",
        "reads, with what the module's own documentation says of it.",
        "",
        "Precedence: a command-line option beats the environment variable it sets (`ratepad",
        "server run --db URL` sets `RATEPAD_DB`), which beats the default. The agent reads",
        "`agent.toml` and its command-line options instead (an option beats the file); the",
        "variables below marked *host* are read by every `ratepad` command.",
        "",
        "A number, zone, hours or date setting out of range stops the server before it serves",
        "anything, with one line naming the variable (exit 2).",
        "",
    ]
    for scope, package in PACKAGES.items():
        described = descriptions(package)
        title = "Host (`ratepad …`)" if scope == "host" else "Server (`ratepad server …`)"
        lines += [f"## {title}", ""]
        for name in sorted(variables_read(package)):
            lines += [f"### `{name}`", ""]
            for module, text in described.get(name, []):
                lines += [f"{_rst_to_md(text)} *({module})*", ""]
    return "\n".join(lines)


def _rst_to_md(text: str) -> str:
    text = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", text)
    return text.replace("``", "`")


# -- agent.toml --------------------------------------------------------------------------------
def _kind(prop: dict[str, Any]) -> tuple[str, str]:
    """A JSON Schema property's type and range, as a reader says them."""
    options = [o for o in prop.get("anyOf", [prop]) if o.get("type") != "null"]
    found = options[0] if options else prop
    kind = str(found.get("type", "table"))
    if kind == "array":
        kind = f"list of {found.get('items', {}).get('type', 'values')}s"
    low, high = found.get("minimum"), found.get("maximum")
    return kind, (f"{low} … {high}" if low is not None and high is not None else "")


def _shown(value: Any) -> str:
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[1], int):
        return f"`{value[0]}:{value[1]}`"  # an address
    if value in (None, (), "", dataclasses.MISSING) or dataclasses.is_dataclass(value):
        return ""
    return f"`{str(value).lower() if isinstance(value, bool) else value}`"


def agent_config_reference() -> str:
    from ratepad.agent import config

    example = (config.__doc__ or "").split("\n\n", 1)[1].split("\n\nFiles the agent", 1)[0]
    agent = {f.name: f.default for f in dataclasses.fields(config.AgentConfig)}
    upload = {f.name: f.default for f in dataclasses.fields(config.UploadConfig)}
    schema = config._AgentFile.model_json_schema()
    sections: dict[str, dict[str, Any]] = {"": schema}
    for name, prop in schema["properties"].items():
        ref = next((o["$ref"] for o in prop.get("anyOf", [prop]) if "$ref" in o), None)
        if ref is not None:
            sections[name] = schema["$defs"][ref.rsplit("/", 1)[1]]
    lines = [
        "# The agent's configuration (`agent.toml`)",
        "",
        "`ratepad agent --config agent.toml` reads it. A command-line option beats the file's",
        "setting, which beats the default; relative paths are relative to the file. A setting",
        "of the wrong type, out of its range or unknown is one line naming the file, the",
        "section and the setting (exit status 2). Written from the code when this site is built.",
        "",
        "```toml",
        example.strip("\n"),
        "```",
        "",
        "`mapping` holds one list per key count (`3`, `4`, `5`): the level value of each score,",
        "from score 1 up.",
        "",
        "| section | setting | type | range | default |",
        "|---|---|---|---|---|",
    ]
    for section, table in sections.items():
        for key, prop in table["properties"].items():
            if not section and key in sections:
                continue
            kind, bounds = _kind(prop)
            default = (upload if section == "upload" else agent).get(
                config._RENAMED.get(key, key) if section != "upload" else key
            )
            where = f"`[{section}]`" if section else "(top level)"
            required = " (required)" if key in table.get("required", ()) else ""
            lines.append(f"| {where} | `{key}`{required} | {kind} | {bounds} | {_shown(default)} |")
    return "\n".join(lines) + "\n"


# -- scenario schema -------------------------------------------------------------------------
def scenario_reference() -> str:
    schema = subprocess.run([sys.executable, "-m", "ratepad", "sim", "--schema"], check=True,
                            capture_output=True, text=True).stdout  # fmt: skip
    return "\n".join([
        "# Scenario file schema",
        "",
        "The JSON Schema of scenario files, as `ratepad sim --schema` prints it (the format is",
        "explained in [Scenario files](../../scenarios.md)).",
        "",
        "```json",
        json.dumps(json.loads(schema), indent=2, ensure_ascii=False),
        "```",
        "",
    ])  # fmt: skip


# -- the bridge's OpenAPI document -----------------------------------------------------------
def _bridge_openapi() -> dict[str, Any]:
    """The document as a running bridge serves it: ``ratepad sandbox`` on a free port."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ratepad", "sandbox", "--keypads", "1", "--listen", "127.0.0.1:0",
         "--seconds", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        url = None
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            m = re.search(r"(http://127\.0\.0\.1:\d+)", line)
            url = m.group(1) if m else None
        if url is None:
            raise RuntimeError("ratepad sandbox did not say where its bridge listens")
        with urllib.request.urlopen(url + "/v1/openapi.json", timeout=10) as answer:
            doc: dict[str, Any] = json.load(answer)
        with urllib.request.urlopen(url + "/v1/ws.schema.json", timeout=10) as answer:
            doc["x-websocket-schemas"] = json.load(answer)
        return doc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def bridge_reference() -> str:
    doc = _bridge_openapi()
    lines = [
        "# The bridge's HTTP API",
        "",
        f"Written from the OpenAPI {doc['openapi']} document a running bridge serves at",
        "`/v1/openapi.json` (version " + str(doc["info"]["version"]) + "). Every call but those",
        "marked *public* needs `Authorization: Bearer <token>` (the token in `<db>.token`).",
        "",
        "| method | path | what | auth |",
        "|---|---|---|---|",
    ]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            auth = (
                "public"
                if op.get("security") == []
                else ("bearer or ticket" if len(op.get("security", [])) > 1 else "bearer")
            )
            summary = (op.get("summary") or op.get("description") or "").splitlines()[0]
            lines.append(f"| `{method.upper()}` | `{path}` | {summary} | {auth} |")
    lines += ["", "## Operations", ""]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            lines += [f"### `{method.upper()} {path}`", "", op.get("description") or
                      op.get("summary") or "", ""]  # fmt: skip
            codes = ", ".join(f"{code} {r.get('description', '')}".strip()
                              for code, r in op.get("responses", {}).items())  # fmt: skip
            if codes:
                lines += [f"Answers: {codes}.", ""]
    lines += ["## Models", "", "```json",
              json.dumps(doc.get("components", {}).get("schemas", {}), indent=2),
              "```", "", "## WebSocket messages (`/v1/ws`)", "", "```json",
              json.dumps(doc["x-websocket-schemas"], indent=2), "```", ""]  # fmt: skip
    return "\n".join(lines)


# -- the wire protocol and the dissector -----------------------------------------------------
def wire_reference() -> str:
    sys.path.insert(0, str(ROOT / "protocol"))
    from ratepad_protocol.model import build_model

    model = build_model()
    lines = [
        "# Wire messages",
        "",
        f"Written from the protocol's model (`protocol/ratepad_protocol/schema.py`): protocol "
        f"version {model.protocol_version}, schema fingerprint `{model.fingerprint:08x}`, "
        f"frames of at most {model.max_frame_bytes} bytes. Integers are little-endian; text is "
        "one length byte and at most the given number of UTF-8 bytes.",
        "",
    ]
    for msg in model.messages:
        way = "host → keypad" if msg.sender == "host" else "keypad → host"
        lines += [f"## `0x{msg.type_id:02X}` {msg.name} ({way})", "",
                  " ".join(msg.doc.split()), ""]  # fmt: skip
        if msg.fields:
            lines += ["| field | kind | bytes | values |", "|---|---|---:|---|"]
            for f in msg.fields:
                values = ", ".join(f"{n}={v:#x}" if f.kind == "flags" else f"{n}={v}"
                                   for n, v in f.members)  # fmt: skip
                lines.append(f"| `{f.name}` | {f.kind} | {f.max_wire_size} | {values} |")
            lines.append("")
    return "\n".join(lines)


FIELD = re.compile(r'ProtoField\.(\w+)\("(ratepad\.[\w.]+)",\s*"([^"]*)"(.*?)\)', re.DOTALL)


def wireshark_reference() -> str:
    lua = (ROOT / "wireshark" / "ratepad.lua").read_text(encoding="utf-8")
    lines = [
        "# Wireshark display fields",
        "",
        "Written from the shipped dissector (`ratepad wireshark --path` says where it is "
        "installed): every field a display filter can use, e.g. `ratepad.rating.score <= 2`.",
        "",
        "| field | type | label | description |",
        "|---|---|---|---|",
    ]
    for kind, name, label, rest in FIELD.findall(lua):
        described = re.findall(r'"([^"]*)"', rest)
        lines.append(f"| `{name}` | {kind} | {label} | {described[-1] if described else ''} |")
    return "\n".join(lines) + "\n"


PAGES = {
    "settings.md": settings_reference,
    "agent-config.md": agent_config_reference,
    "scenario-schema.md": scenario_reference,
    "bridge-api.md": bridge_reference,
    "wire.md": wire_reference,
    "wireshark-fields.md": wireshark_reference,
}


def write_pages(*_: Any) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, make in PAGES.items():
        text = make()
        path = OUT / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")  # unchanged pages keep their time: no rebuild


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", write_pages)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
