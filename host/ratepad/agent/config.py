"""The agent's configuration: a TOML file (tomllib), overridden by command-line flags.

# ratepad-agent.toml
devices = ["hid://", "tcp://127.0.0.1:7000/K1"]
db = "ratings.db"                 # relative paths: relative to this file
listen = "127.0.0.1:8765"         # the local HTTP bridge; "off" for none
token = "..."                     # default: generated into <db>.token (mode 0600)
capture = "agent.pcapng"          # record all link traffic (optional; mode 0600)

[mapping]                         # level values from score 1 up (see levels.py)
5 = [0, 40, 60, 80, 100]
4 = [0, 40, 80, 100]
3 = [0, 60, 100]

[batch]
max_ratings = 500                 # a commit holds at most this many items ...
max_ms = 20                       # ... collected for at most this long

[link]
stall_s = 30                      # no sign of life from a keypad this long: reconnect
hello_check_s = 2                 # a hello not followed by any status: reconnect

[upload]                          # send everything to a ratepad server (ratepad.agent.upload)
url = "https://ratepad.example/"  # the server (http:// or https://)
key = "rpk_..."                   # from `ratepad server enroll-agent --branch CODE`
ca = "bank-ca.pem"                # verify the server against this CA (default: the system's)
batch = 500                       # ratings per request
max_backoff_s = 60                # retries wait 0.5 s, doubling up to this
heartbeat_s = 60                  # nothing to send this long: an empty batch says "still here"

[bridge]
allow_origins = ["http://localhost:3000"]  # web pages that may call the bridge (CORS)
example_page = false              # serve the example page at / (ratepad sandbox: on)

Files the agent writes are its user's only: the token file is created with mode 0600 and an
existing one is used only if it is a regular file (not a symbolic link) owned by this user, not
group- or world-writable, in a folder only this user (or root) can write to (or a sticky one,
like /tmp). The TOML file itself is limited in size, depth and number size (``MAX_CONFIG_BYTES``).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import stat
import tomllib
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import InputError
from .levels import LevelMapping

__all__ = [
    "AgentConfig",
    "ConfigError",
    "UploadConfig",
    "check_origin",
    "check_token",
    "create_private_file",
    "load_config",
    "load_or_create_token",
    "parse_listen",
]

MAX_CONFIG_BYTES = 64 * 1024
MAX_CONFIG_DEPTH = 8  # tables and arrays inside each other; agent.toml needs 2

DEFAULT_DB = Path("ratepad.db")
DEFAULT_LISTEN = ("127.0.0.1", 8765)


class ConfigError(InputError):
    """A configuration file or value that cannot be used (one line, for the user)."""


@dataclass(frozen=True)
class UploadConfig:
    """Where and how the agent uploads (``[upload]`` or ``--upload URL --upload-key KEY``)."""

    url: str
    key: str
    ca: Path | None = None
    batch: int = 500
    max_backoff_s: float = 60.0
    heartbeat_s: float = 60.0  # an empty batch after this long without one: "still here"

    @classmethod
    def checked(
        cls,
        url: str,
        key: str,
        ca: Path | None = None,
        batch: int = 500,
        where: str = "upload",
        max_backoff_s: float = 60.0,
        heartbeat_s: float = 60.0,
    ) -> UploadConfig:
        scheme, sep, rest = url.partition("://")
        if not sep or scheme not in ("http", "https") or not rest.strip("/"):
            raise ConfigError(f"{where}: url {url!r} must be http://HOST[:PORT]/ or https://...")
        check_token(key, f"{where}: key")
        if ca is not None and not ca.is_file():
            raise ConfigError(f"{where}: ca {str(ca)!r} is not a file")
        return cls(url, key, ca, batch, max_backoff_s, heartbeat_s)


@dataclass(frozen=True)
class AgentConfig:
    devices: tuple[str, ...] = ()
    db: Path = DEFAULT_DB
    listen: tuple[str, int] | None = DEFAULT_LISTEN
    token: str | None = None
    capture: Path | None = None
    mapping: LevelMapping = field(default_factory=LevelMapping)
    batch_max: int = 500
    batch_ms: float = 20.0
    stall_s: float = 30.0
    hello_check_s: float = 2.0
    allow_origins: tuple[str, ...] = ()
    example_page: bool = False
    upload: UploadConfig | None = None

    @property
    def token_file(self) -> Path:
        return self.db.with_name(self.db.name + ".token")


def parse_listen(text: str) -> tuple[str, int] | None:
    """``127.0.0.1:PORT``, ``localhost:PORT``, ``[::1]:PORT`` (loopback only) or ``off``."""
    if text.strip().lower() in ("off", "none", ""):
        return None
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"listen address {text!r}: expected 127.0.0.1:PORT (or off)")
    host = host.strip("[]")
    if host == "localhost":
        host = "127.0.0.1"
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ConfigError(
            f"listen address {text!r}: the bridge only listens on loopback (127.0.0.1 or [::1])"
        )
    return host, int(port_text)


def check_origin(text: str, where: str = "origin") -> str:
    """A web origin: ``http(s)://host[:port]``, no path (as browsers send it)."""
    parts = urlsplit(text)
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or not port_ok
        or parts.path
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise ConfigError(f"{where}: origin {text!r}: expected http(s)://host[:port]")
    return text.rstrip("/").lower()


# -- the file's shape ----------------------------------------------------------------------------
# What each setting must be (its type, its range, unknown keys refused) is said once, in these
# models; what a value must mean (a loopback address, a token, an origin, a level table, a
# server URL) by the functions the command line uses as well, after the shape is checked.
class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _Batch(_Table):
    max_ratings: Annotated[int, Field(ge=1, le=100_000)] | None = None
    max_ms: Annotated[float, Field(ge=0, le=10_000)] | None = None


class _Link(_Table):
    stall_s: Annotated[float, Field(ge=0.5, le=86_400)] | None = None
    hello_check_s: Annotated[float, Field(ge=0.1, le=600)] | None = None


class _Bridge(_Table):
    allow_origins: list[str] | None = Field(None, description="a list of origins")
    example_page: bool | None = None


class _Upload(_Table):
    url: str
    key: str
    ca: str | None = None
    batch: Annotated[int, Field(ge=1, le=5000)] | None = None
    max_backoff_s: Annotated[float, Field(ge=0.1, le=3600)] | None = None
    heartbeat_s: Annotated[float, Field(ge=1, le=3600)] | None = None


class _AgentFile(_Table):
    devices: list[str] | None = Field(None, description="a list of keypad URLs")
    db: str | None = None
    listen: str | None = None
    token: str | None = None
    capture: str | None = None
    mapping: dict[str, Any] | None = None
    batch: _Batch | None = None
    link: _Link | None = None
    bridge: _Bridge | None = None
    upload: _Upload | None = None


# the file's [section] key -> AgentConfig's field
_RENAMED = {"max_ratings": "batch_max", "max_ms": "batch_ms"}


def load_config(path: str | Path) -> AgentConfig:
    """Read and check a TOML configuration file; raises ConfigError with a reason."""
    path = Path(path)
    try:
        found = _AgentFile.model_validate(_read_toml(path))
    except ValidationError as exc:
        raise ConfigError(_first_problem(exc, str(path))) from None
    base = path.resolve().parent
    meaning: dict[str, Callable[[Any], Any]] = {
        "devices": tuple,
        "db": base.joinpath,  # relative paths: relative to the file
        "capture": base.joinpath,
        "listen": parse_listen,
        "token": check_token,
        "mapping": LevelMapping.from_config,
    }
    cfg: dict[str, Any] = {}
    for key, value in found.model_dump(exclude_unset=True, include=set(meaning)).items():
        try:
            cfg[key] = meaning[key](value)
        except (ValueError, ConfigError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
    for section in (found.batch, found.link):
        if section is not None:
            given = section.model_dump(exclude_unset=True)
            cfg.update((_RENAMED.get(k, k), v) for k, v in given.items())
    if found.bridge is not None:
        cfg.update(_bridge_settings(found.bridge, f"{path} [bridge]"))
    if found.upload is not None:
        cfg["upload"] = _upload_settings(found.upload, base, f"{path} [upload]")
    return AgentConfig(**cfg)


def _bridge_settings(bridge: _Bridge, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if bridge.allow_origins is not None:
        out["allow_origins"] = tuple(check_origin(o, where) for o in bridge.allow_origins)
    if bridge.example_page is not None:
        out["example_page"] = bridge.example_page
    return out


def _upload_settings(upload: _Upload, base: Path, where: str) -> UploadConfig:
    given = upload.model_dump(exclude_unset=True, exclude={"url", "key", "ca"})
    ca = base / upload.ca if upload.ca else None
    return UploadConfig.checked(upload.url, upload.key, ca, where=where, **given)


def _first_problem(exc: ValidationError, where: str) -> str:
    """The first thing wrong in the file, as one line: where, which setting, what it must be."""
    error = exc.errors()[0]
    names = [str(part) for part in error["loc"] if isinstance(part, str)]
    if len(names) > 1:
        where = f"{where} [{names[0]}]"
    key = names[-1] if names else "?"
    if error["type"] == "extra_forbidden":
        known = _AgentFile.model_fields if len(names) == 1 else _section_fields(names[0])
        return f"{where}: unknown setting {key!r} (known: {', '.join(sorted(known))})"
    if error["type"] == "missing":
        return f"{where}: {key} is required"
    return f"{where}: {key} must be {_expected(names)}"


def _section_fields(name: str) -> dict[str, Any]:
    annotation = _AgentFile.model_fields[name].annotation
    model = next(a for a in typing.get_args(annotation) if isinstance(a, type))
    return dict(model.model_fields) if issubclass(model, BaseModel) else {}


def _expected(names: list[str]) -> str:
    """What setting ``names`` must be, from the file's JSON Schema (one place for the ranges)."""
    schema = _AgentFile.model_json_schema()
    node: dict[str, Any] = schema
    for name in names:
        node = _resolved(node, schema)["properties"][name]
    node = _resolved(node, schema)
    kind = node.get("type")
    if "description" in node:
        return str(node["description"])
    if kind in ("integer", "number"):
        whole = "whole " if kind == "integer" else ""
        return f"a {whole}number from {node['minimum']:g} to {node['maximum']:g}"
    return {"boolean": "true or false", "string": "a string", "object": "a table"}.get(
        str(kind), "a list"
    )


def _resolved(node: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """``node`` without its ``anyOf [..., null]`` and ``$ref``: the setting's own schema."""
    if "anyOf" in node:
        node = {
            **next(n for n in node["anyOf"] if n.get("type") != "null"),
            **{k: v for k, v in node.items() if k != "anyOf"},
        }
    if "$ref" in node:
        node = schema["$defs"][node["$ref"].rpartition("/")[2]]
    return node


def _read_toml(path: Path) -> dict[str, Any]:
    """The TOML file at ``path``, parsed, within the limits of size and depth."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path} is larger than {MAX_CONFIG_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text") from None
    _check_nesting(text, str(path))
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ConfigError(f"{path} is not a usable TOML file: {exc}") from None
    _check_depth(data, str(path))
    return data


def _check_nesting(text: str, where: str) -> None:
    # Brackets and braces opened before any closes: tomllib recurses once per level, so a
    # file nested thousands deep would hit the interpreter's recursion limit. An upper bound
    # (brackets in strings count too), cheap, before parsing.
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > 4 * MAX_CONFIG_DEPTH:
                raise ConfigError(f"{where}: nested deeper than {MAX_CONFIG_DEPTH} levels")
        elif ch in "]}" and depth:
            depth -= 1


def _check_depth(value: Any, where: str, depth: int = 0) -> None:
    if depth > MAX_CONFIG_DEPTH:
        raise ConfigError(f"{where}: nested deeper than {MAX_CONFIG_DEPTH} levels")
    if isinstance(value, dict):
        for v in value.values():
            _check_depth(v, where, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check_depth(v, where, depth + 1)


def check_token(token: str, where: str = "token") -> str:
    """A bearer token: 16..256 visible ASCII characters, no spaces."""
    if not 16 <= len(token) <= 256 or not all(33 <= ord(ch) < 127 for ch in token):
        raise ConfigError(f"{where}: the token must be 16..256 visible ASCII characters")
    return token


# -- private files: the token, the capture -------------------------------------------------------
def _check_folder(path: Path, what: str) -> None:
    folder = path.parent
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        raise ConfigError(f"{what} {path}: the folder {folder} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot use its folder: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ConfigError(f"{what} {path}: {folder} is not a folder")
    others_write = st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX
    if others_write or st.st_uid not in (os.geteuid(), 0):
        raise ConfigError(
            f"{what} {path}: refused, other users can write to its folder {folder} "
            "(use a folder only this user can write to)"
        )


def _check_private(path: Path, st: os.stat_result, what: str) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{what} {path}: refused, not a regular file")
    if st.st_uid != os.geteuid():
        raise ConfigError(f"{what} {path}: refused, owned by another user (uid {st.st_uid})")
    if st.st_mode & 0o022:
        raise ConfigError(f"{what} {path}: refused, other users can write to it")


def load_or_create_token(path: str | Path) -> str:
    """The bearer token in ``path``, or a new random one written there with mode 0600.

    An existing file is used only if it is safe (see the module's docstring): otherwise
    ConfigError, one line, and the token is never shown."""
    path = Path(path)
    what = "token file"
    _check_folder(path, what)
    for _ in range(3):  # created by another agent between our two looks: read it
        try:
            if stat.S_ISLNK(os.lstat(path).st_mode):
                raise ConfigError(f"{what} {path}: refused, it is a symbolic link")
        except FileNotFoundError:
            token = secrets.token_urlsafe(32)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            try:
                fd = os.open(path, flags, 0o600)
            except FileExistsError:
                continue
            except OSError as exc:
                raise ConfigError(f"cannot write the {what} {path}: {exc.strerror}") from None
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(token + "\n")
            return token
        except OSError as exc:
            raise ConfigError(f"cannot read the {what} {path}: {exc.strerror}") from None
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise ConfigError(f"cannot read the {what} {path}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            _check_private(path, os.fstat(f.fileno()), what)
            if os.fstat(f.fileno()).st_mode & 0o077:
                os.fchmod(f.fileno(), 0o600)
            raw = f.read(1024)
        try:
            return check_token(raw.decode("ascii").strip(), str(path))
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: the token must be visible ASCII characters") from None
    raise ConfigError(f"{what} {path}: keeps changing; is another agent starting?")


def create_private_file(path: str | Path, what: str) -> Path:
    """Create (or empty) ``path`` with mode 0600 for the agent to write (a capture file).

    The folder must exist; a symbolic link, another user's file or a file others can write
    is refused (ConfigError, one line)."""
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise ConfigError(f"{what} {path}: the folder {folder} does not exist")
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        reason = "it is a symbolic link" if os.path.islink(path) else exc.strerror
        raise ConfigError(f"{what} {path}: cannot create it: {reason}") from None
    try:
        _check_private(path, os.fstat(fd), what)
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
    return path
