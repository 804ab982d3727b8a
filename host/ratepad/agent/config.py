"""The agent's configuration: a TOML file (tomllib), overridden by command-line flags.

# ratepad-agent.toml
devices = ["hid://", "tcp://127.0.0.1:7000/K1"]
db = "ratings.db"                 # relative paths: relative to this file
listen = "127.0.0.1:8765"         # the local HTTP bridge; "off" for none
token = "..."                     # default: generated into <db>.token (mode 0600)
capture = "agent.pcapng"          # record all link traffic (optional)

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
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RatepadError
from .levels import LevelMapping

__all__ = [
    "AgentConfig",
    "ConfigError",
    "UploadConfig",
    "check_token",
    "load_config",
    "parse_listen",
]

DEFAULT_DB = Path("ratepad.db")
DEFAULT_LISTEN = ("127.0.0.1", 8765)


class ConfigError(RatepadError):
    """A configuration file or value that cannot be used (one line, for the user)."""


@dataclass(frozen=True)
class UploadConfig:
    """Where and how the agent uploads (``[upload]`` or ``--upload URL --upload-key KEY``)."""

    url: str
    key: str
    ca: Path | None = None
    batch: int = 500
    max_backoff_s: float = 60.0

    @classmethod
    def checked(
        cls,
        url: str,
        key: str,
        ca: Path | None = None,
        batch: int = 500,
        where: str = "upload",
        max_backoff_s: float = 60.0,
    ) -> UploadConfig:
        scheme, sep, rest = url.partition("://")
        if not sep or scheme not in ("http", "https") or not rest.strip("/"):
            raise ConfigError(f"{where}: url {url!r} must be http://HOST[:PORT]/ or https://...")
        check_token(key, f"{where}: key")
        if ca is not None and not ca.is_file():
            raise ConfigError(f"{where}: ca {str(ca)!r} is not a file")
        return cls(url, key, ca, batch, max_backoff_s)


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


_KNOWN = {"devices", "db", "listen", "token", "capture", "mapping", "batch", "link", "upload"}
_SECTIONS = {
    "batch": {"max_ratings", "max_ms"},
    "link": {"stall_s", "hello_check_s"},
    "upload": {"url", "key", "ca", "batch", "max_backoff_s"},
}


def _number(section: dict[str, Any], key: str, where: str, low: float, high: float) -> float:
    value = section[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigError(f"{where}: {key} must be a number from {low:g} to {high:g}")
    return float(value)


def load_config(path: str | Path) -> AgentConfig:
    """Read and check a TOML configuration file; raises ConfigError with a reason."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - _KNOWN)
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(_KNOWN))})"
        )
    base = path.resolve().parent
    cfg: dict[str, Any] = {}

    def text(key: str) -> str:
        value = data[key]
        if not isinstance(value, str):
            raise ConfigError(f"{path}: {key} must be a string")
        return value

    if "devices" in data:
        devices = data["devices"]
        if not isinstance(devices, list) or not all(isinstance(d, str) for d in devices):
            raise ConfigError(f"{path}: devices must be a list of keypad URLs")
        cfg["devices"] = tuple(devices)
    if "db" in data:
        cfg["db"] = base / text("db")
    if "capture" in data:
        cfg["capture"] = base / text("capture")
    if "listen" in data:
        cfg["listen"] = parse_listen(text("listen"))
    if "token" in data:
        cfg["token"] = check_token(text("token"), str(path))
    if "mapping" in data:
        if not isinstance(data["mapping"], dict):
            raise ConfigError(f"{path}: [mapping] must be a table")
        try:
            cfg["mapping"] = LevelMapping.from_config(data["mapping"])
        except ValueError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    for name, keys in _SECTIONS.items():
        section = data.get(name, {})
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: [{name}] must be a table")
        unknown = sorted(set(section) - keys)
        if unknown:
            raise ConfigError(f"{path}: unknown setting {unknown[0]!r} in [{name}]")
    batch, link = data.get("batch", {}), data.get("link", {})
    where = f"{path} [batch]"
    if "max_ratings" in batch:
        cfg["batch_max"] = int(_number(batch, "max_ratings", where, 1, 100_000))
    if "max_ms" in batch:
        cfg["batch_ms"] = _number(batch, "max_ms", where, 0, 10_000)
    where = f"{path} [link]"
    if "stall_s" in link:
        cfg["stall_s"] = _number(link, "stall_s", where, 0.5, 86_400)
    if "hello_check_s" in link:
        cfg["hello_check_s"] = _number(link, "hello_check_s", where, 0.1, 600)
    upload = data.get("upload")
    if upload:
        where = f"{path} [upload]"
        if not isinstance(upload.get("url"), str) or not isinstance(upload.get("key"), str):
            raise ConfigError(f"{where}: url and key are required strings")
        ca = upload.get("ca")
        if ca is not None and not isinstance(ca, str):
            raise ConfigError(f"{where}: ca must be a string")
        batch_size = int(_number(upload, "batch", where, 1, 5000)) if "batch" in upload else 500
        backoff = (
            _number(upload, "max_backoff_s", where, 0.1, 3600)
            if "max_backoff_s" in upload
            else 60.0
        )
        cfg["upload"] = UploadConfig.checked(
            upload["url"], upload["key"], base / ca if ca else None, batch_size, where, backoff
        )
    return AgentConfig(**cfg)


def check_token(token: str, where: str = "token") -> str:
    """A bearer token: 16..256 visible ASCII characters, no spaces."""
    if not 16 <= len(token) <= 256 or not all(33 <= ord(ch) < 127 for ch in token):
        raise ConfigError(f"{where}: the token must be 16..256 visible ASCII characters")
    return token
