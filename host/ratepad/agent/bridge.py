"""The local HTTP bridge: teller and queue software (Java, .NET, browsers) drive the keypads
through the agent over HTTP on the loopback interface.

Every request but ``GET /v1/openapi.json`` needs ``Authorization: Bearer <token>``. Errors are
JSON ``{"error": <code>, "message": <text>}`` with a 4xx/5xx status; a bad request changes
nothing. The full description is the OpenAPI document (``openapi.py``), served at
``/v1/openapi.json``. Stdlib only: ``ThreadingHTTPServer``, one thread per connection; SSE
streams (``/v1/events``) hold their thread while open.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import (
    CommandError,
    DisconnectedError,
    RatepadError,
    RatepadTimeout,
)
from ..errors import (
    DeviceUnavailableError as DeviceUnavailable,
)
from ..errors import (
    UnknownDeviceError as UnknownDevice,
)
from .config import ConfigError, check_token
from .openapi import openapi_document
from .store import StoreError

if TYPE_CHECKING:
    from .agent import Agent

__all__ = ["MAX_BODY", "Bridge", "load_or_create_token"]

MAX_BODY = 16 * 1024
PROMPT_GRACE_S = 2.0  # after the keypad's own timeout: decision window, commit, delivery
KEEPALIVE_S = 15.0
MAX_PROMPT_S = 3600.0


def load_or_create_token(path: Path) -> str:
    """The token in ``path``, or a new random one written there with mode 0600."""
    try:
        token = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        token = secrets.token_urlsafe(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another agent just wrote it
            return load_or_create_token(path)
        except OSError as exc:
            raise ConfigError(f"cannot write the token file {path}: {exc.strerror}") from None
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(token + "\n")
        return token
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the token file {path}: {exc}") from None
    with contextlib.suppress(OSError):
        os.chmod(path, 0o600)
    return check_token(token, str(path))


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.extra = extra


# -- request validation --------------------------------------------------------------------------
def _fields(body: dict[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ApiError(400, "bad_request", f"unknown field {unknown[0]!r}")


def _text(body: dict[str, Any], key: str, max_bytes: int, default: str | None = None) -> str:
    value = body.get(key, default)
    if value is None:
        raise ApiError(400, "bad_request", f"{key!r} is required")
    if not isinstance(value, str):
        raise ApiError(400, "bad_request", f"{key!r} must be a string")
    if len(value.encode()) > max_bytes:
        raise ApiError(400, "bad_request", f"{key!r} is longer than {max_bytes} bytes")
    return value


def _int(text: str, name: str, low: int, high: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, "bad_request", f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ApiError(400, "bad_request", f"{name} must be {low}..{high}")
    return value


# -- the server ----------------------------------------------------------------------------------
class _Server(ThreadingHTTPServer):
    daemon_threads = True
    bridge: Bridge


class _Server6(_Server):
    address_family = socket.AF_INET6


class Bridge:
    """Serves the agent's keypads on ``address`` (loopback) until ``stop()``."""

    def __init__(self, agent: Agent, address: tuple[str, int], token: str) -> None:
        self.agent = agent
        self.token = token.encode()
        server_class = _Server6 if ":" in address[0] else _Server
        try:
            self.server = server_class(address, _Handler)
        except OSError as exc:
            host, port = address
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.server.bridge = self
        self.stopping = threading.Event()
        self._thread = threading.Thread(
            target=self.server.serve_forever, args=(0.1,), name="ratepad-bridge", daemon=True
        )

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self._thread.is_alive():
            self.server.shutdown()
        self.server.server_close()


Route = Callable[["_Handler", list[str]], None]


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "ratepad-agent"
    timeout = 120  # idle keep-alive connections are dropped

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the agent logs what matters; no line per request

    # -- plumbing -------------------------------------------------------------------------------
    @property
    def bridge(self) -> Bridge:
        return self.server.bridge

    @property
    def agent(self) -> Agent:
        return self.server.bridge.agent

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        body = (json.dumps(obj, ensure_ascii=False) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, exc: ApiError) -> None:
        # close after an error: the request's body may not have been read
        headers = {"Connection": "close"}
        self.close_connection = True
        if exc.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="ratepad"'
        if exc.status == 405:
            headers["Allow"] = exc.extra.pop("allow")
        self._send_json(exc.status, {"error": exc.code, "message": str(exc), **exc.extra}, headers)

    def _body(self) -> dict[str, Any]:
        if self.headers.get("Transfer-Encoding"):
            raise ApiError(411, "length_required", "send the body with a Content-Length")
        length_text = self.headers.get("Content-Length", "0")
        try:
            length = int(length_text)
        except ValueError:
            raise ApiError(400, "bad_request", "bad Content-Length") from None
        if length < 0:
            raise ApiError(400, "bad_request", "bad Content-Length")
        if length > MAX_BODY:
            raise ApiError(413, "too_large", f"request body over {MAX_BODY} bytes")
        raw = self.rfile.read(length) if length else b""
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ApiError(400, "bad_json", f"the body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise ApiError(400, "bad_json", "the body must be a JSON object")
        return body

    def _authorize(self) -> None:
        header = self.headers.get("Authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            given.strip().encode(), self.bridge.token
        ):
            raise ApiError(401, "unauthorized", "missing or wrong bearer token")

    def _dispatch(self) -> None:
        try:
            parts = urlsplit(self.path)
            segments = [unquote(s) for s in parts.path.split("/")[1:]]
            self._query = parse_qs(parts.query)
            if segments == ["v1", "openapi.json"] and self.command in ("GET", "HEAD"):
                self._send_json(200, openapi_document(self.bridge.url))
                return
            self._authorize()
            route, args, allowed = _match(segments, self.command)
            if route is None:
                if allowed:
                    raise ApiError(405, "method_not_allowed", "method not allowed", allow=allowed)
                raise ApiError(404, "not_found", f"no such endpoint: {parts.path}")
            route(self, args)
        except ApiError as exc:
            self._error(exc)
        except UnknownDevice as exc:
            self._error(ApiError(404, "unknown_device", str(exc)))
        except (DeviceUnavailable, DisconnectedError) as exc:
            self._error(ApiError(503, "device_unavailable", str(exc)))
        except CommandError as exc:
            code = exc.result.code
            name = code.name.lower() if hasattr(code, "name") else str(code)
            self._error(ApiError(409, "refused", str(exc), result=name))
        except RatepadTimeout as exc:
            self._error(ApiError(504, "device_timeout", str(exc)))
        except StoreError as exc:
            self._error(ApiError(500, "store_error", str(exc)))
        except RatepadError as exc:
            self._error(ApiError(502, "device_error", str(exc)))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a bug: answer 500 rather than drop the connection
            self.agent.log(f"bridge: {self.command} {self.path}: {type(exc).__name__}: {exc}")
            with contextlib.suppress(OSError):
                self._error(ApiError(500, "internal", f"{type(exc).__name__}: {exc}"))

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _dispatch

    # -- endpoints ------------------------------------------------------------------------------
    def get_devices(self, _: list[str]) -> None:
        self._send_json(200, {"devices": [_device_json(w) for w in self.agent.workers]})

    def get_device(self, args: list[str]) -> None:
        self._send_json(200, _device_json(self.agent.device(args[0])))

    def post_prompt(self, args: list[str]) -> None:
        body = self._body()
        _fields(body, {"staff", "timeout", "wait"})
        staff = _text(body, "staff", 16, "")
        timeout = body.get("timeout", 30)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float):
            raise ApiError(400, "bad_request", "'timeout' must be a number of seconds")
        if not 0 < timeout <= MAX_PROMPT_S:
            raise ApiError(400, "bad_request", f"'timeout' must be in (0, {MAX_PROMPT_S:g}]")
        wait = body.get("wait", True)
        if not isinstance(wait, bool):
            raise ApiError(400, "bad_request", "'wait' must be true or false")
        serial = args[0]
        handle = self.agent.prompt(serial, staff, float(timeout))
        answer = {"serial": serial, "prompt_id": handle.prompt_id}
        if not wait:
            self._send_json(202, {**answer, "state": "issued"})
            return
        rating = self.agent.wait_answer(serial, handle.prompt_id, timeout + PROMPT_GRACE_S)
        if rating is None:
            self.agent.prompt_timed_out(serial, handle.prompt_id)
            raise ApiError(
                504, "timeout", f"no rating within {timeout:g} s", **answer, state="timed_out"
            )
        self._send_json(200, {**answer, "state": "answered", "rating": rating})

    def post_cancel(self, args: list[str]) -> None:
        body = self._body()
        _fields(body, {"prompt_id"})
        prompt_id = body.get("prompt_id", 0)
        if isinstance(prompt_id, bool) or not isinstance(prompt_id, int):
            raise ApiError(400, "bad_request", "'prompt_id' must be an integer")
        if not 0 <= prompt_id <= 0xFFFFFFFF:
            raise ApiError(400, "bad_request", "'prompt_id' out of range")
        self.agent.cancel(args[0], prompt_id)
        self._send_json(200, {"serial": args[0], "prompt_id": prompt_id, "state": "cancelled"})

    def post_login(self, args: list[str]) -> None:
        body = self._body()
        _fields(body, {"staff", "name"})
        staff = _text(body, "staff", 16)
        if not staff:
            raise ApiError(400, "bad_request", "'staff' must not be empty")
        name = _text(body, "name", 32, "")
        self.agent.login(args[0], staff, name)
        self._send_json(200, {"serial": args[0], "staff": staff, "logged_in": True})

    def post_logout(self, args: list[str]) -> None:
        body = self._body()
        _fields(body, {"staff"})
        staff = _text(body, "staff", 16, "")
        self.agent.logout(args[0], staff)
        self._send_json(200, {"serial": args[0], "staff": staff, "logged_in": False})

    def get_prompt(self, args: list[str]) -> None:
        serial = self.agent.device(args[0]).serial or args[0]
        prompt_id = _int(args[1], "prompt id", 1, 0xFFFFFFFF)
        row = self.agent.store.prompt(serial, prompt_id)
        if row is None:
            raise ApiError(404, "unknown_prompt", f"no prompt {prompt_id} on {serial}")
        self._send_json(200, row)

    def get_ratings(self, _: list[str]) -> None:
        unknown = sorted(set(self._query) - {"since", "limit", "serial"})
        if unknown:
            raise ApiError(400, "bad_request", f"unknown parameter {unknown[0]!r}")
        since = _int(self._param("since", "0"), "since", 0, 2**63 - 1)
        limit = _int(self._param("limit", "100"), "limit", 1, 1000)
        serial = self._query.get("serial", [None])[-1]
        rows = self.agent.store.ratings(since, limit, serial)
        self._send_json(
            200,
            {"ratings": [r.as_json() for r in rows], "next": rows[-1].id if rows else since},
        )

    def get_summary(self, _: list[str]) -> None:
        self._send_json(200, {"devices": self.agent.store.summary()})

    def _param(self, name: str, default: str) -> str:
        return self._query.get(name, [default])[-1]

    def get_events(self, _: list[str]) -> None:
        last = self.headers.get("Last-Event-ID") or self._param("since", "")
        since = _int(last, "Last-Event-ID", 0, 2**63 - 1) if last else None
        sub = self.agent.hub.subscribe()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            self._sse("retry: 2000\n\n")
            replayed = 0
            if since is not None:  # catch up from the store, then go live without a gap
                for row in self.agent.store.iter_ratings(since, 10_000):
                    self._sse(_sse_event("rating", row.as_json(), row.id))
                    replayed = row.id
            quiet_since = time.monotonic()
            while not self.bridge.stopping.is_set() and not sub.closed:
                event = sub.get(1.0)
                if event is None:
                    if time.monotonic() - quiet_since >= KEEPALIVE_S:
                        self._sse(": keepalive\n\n")
                        quiet_since = time.monotonic()
                    continue
                if event.kind == "rating" and event.id <= replayed:
                    continue
                self._sse(_sse_event(event.kind, event.data, event.id))
                quiet_since = time.monotonic()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        finally:
            sub.close()

    def _sse(self, text: str) -> None:
        self.wfile.write(text.encode())
        self.wfile.flush()


def _sse_event(kind: str, data: dict[str, Any], event_id: int) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _device_json(w: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"serial": w.serial, "url": w.url, "connected": w.connected}
    if w.info is not None:
        out.update(
            firmware=w.info.firmware_version,
            board=w.info.board,
            keys=w.info.key_count,
            boot_id=w.info.boot_id,
        )
    if w.status is not None:
        from ..jsonio import event_json

        status = event_json(w.status)
        status.pop("event", None)
        status.pop("serial", None)
        out["status"] = status
    if not w.connected and w.last_error:
        out["error"] = w.last_error
    return out


# path patterns: "*" is one path segment (a serial, a prompt id), passed to the handler
_ROUTES: list[tuple[list[str], str, Route]] = [
    (["v1", "devices"], "GET", _Handler.get_devices),
    (["v1", "devices", "*"], "GET", _Handler.get_device),
    (["v1", "devices", "*", "prompt"], "POST", _Handler.post_prompt),
    (["v1", "devices", "*", "cancel"], "POST", _Handler.post_cancel),
    (["v1", "devices", "*", "login"], "POST", _Handler.post_login),
    (["v1", "devices", "*", "logout"], "POST", _Handler.post_logout),
    (["v1", "devices", "*", "prompts", "*"], "GET", _Handler.get_prompt),
    (["v1", "ratings"], "GET", _Handler.get_ratings),
    (["v1", "summary"], "GET", _Handler.get_summary),
    (["v1", "events"], "GET", _Handler.get_events),
    (["v1", "openapi.json"], "GET", lambda h, a: None),  # served before authorization
]


def _match(segments: list[str], method: str) -> tuple[Route | None, list[str], str]:
    """(handler, path arguments, "") or (None, [], allowed methods if the path exists)."""
    allowed = []
    for pattern, verb, route in _ROUTES:
        if len(pattern) != len(segments):
            continue
        args = []
        for p, s in zip(pattern, segments, strict=True):
            if p == "*":
                if not s:
                    break
                args.append(s)
            elif p != s:
                break
        else:
            if verb == method or (verb == "GET" and method == "HEAD"):
                return route, args, ""
            allowed.append(verb)
    return None, [], ", ".join(allowed)
