"""What stands between a web page the teller happens to open and the keypads: the bridge's guard.

A server on 127.0.0.1 is reachable from any page in the teller's browser (cross-site requests,
DNS rebinding), so the token alone is not enough. Every request passes, in this order:

1. **Host**: must be the bridge's own loopback address or name with its port (``127.0.0.1:8765``,
   ``localhost:8765``, ``[::1]:8765``); anything else (a rebound domain) gets 421 ``bad_host``.
2. **Origin**: a request that carries an ``Origin`` other than the bridge's own or one of
   ``[bridge] allow_origins`` is refused with 403 ``forbidden_origin`` when it could change
   state (POST, PUT, PATCH, DELETE, a preflight) or is a WebSocket upgrade; CORS headers (by
   Starlette's ``CORSMiddleware``, inside this guard) are given to the allowed origins only.
3. **Bounds**: at most ``max_connections`` requests at once (503 ``too_many``), bodies of at most
   ``max_body`` bytes (413 ``too_large``, checked on the declared length and while reading).
4. **Authentication**: ``Authorization: Bearer <token>`` compared in constant time, or, for
   ``GET /v1/events`` and ``/v1/ws`` only, a single-use ``ticket`` from ``POST /v1/tickets`` in
   the URL (browsers' EventSource and WebSocket cannot send headers; the long-lived token never
   goes into a URL). The OpenAPI document, the WebSocket schemas and the example page are public.

Every refusal is JSON ``{"error", "message"}``, never HTML.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

__all__ = ["Guard", "Tickets"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TICKET_TTL_S = 30.0
MAX_TICKETS = 1000
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
TICKET_PATHS = {"/v1/events": "events", "/v1/ws": "ws"}
PUBLIC_PATHS = frozenset({"/v1/openapi.json", "/v1/ws.schema.json", "/", "/favicon.ico"})


class Tickets:
    """Short-lived single-use tickets (thread-safe)."""

    def __init__(self, ttl: float = TICKET_TTL_S, limit: int = MAX_TICKETS) -> None:
        self.ttl = ttl
        self.limit = limit
        self._lock = threading.Lock()
        self._tickets: dict[str, tuple[str, float]] = {}

    def issue(self, purpose: str) -> str:
        now = time.monotonic()
        with self._lock:
            self._tickets = {t: v for t, v in self._tickets.items() if v[1] > now}
            while len(self._tickets) >= self.limit:  # the oldest goes first
                self._tickets.pop(next(iter(self._tickets)))
            ticket = secrets.token_urlsafe(24)
            self._tickets[ticket] = (purpose, now + self.ttl)
        return ticket

    def redeem(self, ticket: str, purpose: str) -> bool:
        """True once for a valid ticket of ``purpose``; it is gone afterwards."""
        with self._lock:
            entry = self._tickets.pop(ticket, None)
        return entry is not None and entry[0] == purpose and entry[1] > time.monotonic()


def bearer_ok(header: bytes, token: bytes) -> bool:
    scheme, _, given = header.partition(b" ")
    # compare_digest: the time taken does not tell how much of the token was right
    return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), token)


class Guard:
    """Pure ASGI middleware applying the rules of this module's docstring."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        token: bytes,
        tickets: Tickets,
        hosts: Callable[[], frozenset[str]],
        allow_origins: frozenset[str],
        max_body: int,
        max_connections: int,
    ) -> None:
        self.app = app
        self.token = token
        self.tickets = tickets
        self.hosts = hosts
        self.allow_origins = allow_origins
        self.max_body = max_body
        self.max_connections = max_connections
        self.active = 0

    def own_origins(self) -> frozenset[str]:
        return frozenset(f"http://{h}" for h in self.hosts())

    def origin_allowed(self, origin: str) -> bool:
        origin = origin.lower()
        return origin in self.allow_origins or origin in self.own_origins()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = {}
        for k, v in scope["headers"]:
            headers.setdefault(k.lower(), v)
        method = scope.get("method", "GET")
        path = scope["path"]
        host = headers.get(b"host", b"").decode("latin-1").lower()
        if host not in self.hosts():
            why = "this bridge answers only to its own loopback address (Host header)"
            await self.refuse(scope, send, 421, "bad_host", why)
            return
        origin = headers.get(b"origin", b"").decode("latin-1")
        foreign = bool(origin) and not self.origin_allowed(origin)
        if foreign and (kind == "websocket" or method in STATE_CHANGING):
            why = f"origin {origin!r} is not in [bridge] allow_origins"
            await self.refuse(scope, send, 403, "forbidden_origin", why)
            return
        if kind == "http" and method == "OPTIONS":  # a preflight: CORSMiddleware answers it
            await self.app(scope, receive, send)
            return
        if not self.authorized(path, headers, scope):
            why = "missing or wrong bearer token (or ticket)"
            challenge = {"www-authenticate": 'Bearer realm="ratepad"'}
            await self.refuse(scope, send, 401, "unauthorized", why, challenge)
            return
        if kind == "http":
            length = headers.get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_body):
                if not length.isdigit():
                    await self.refuse(scope, send, 400, "bad_request", "bad Content-Length")
                else:
                    why = f"request body over {self.max_body} bytes"
                    await self.refuse(scope, send, 413, "too_large", why)
                return
        if self.active >= self.max_connections:
            await self.refuse(scope, send, 503, "too_many", "too many requests at once")
            return
        self.active += 1
        try:
            await self.app(scope, self.bounded(receive) if kind == "http" else receive, send)
        finally:
            self.active -= 1

    def authorized(self, path: str, headers: dict[bytes, bytes], scope: Scope) -> bool:
        if path in PUBLIC_PATHS or path.startswith("/static/"):
            return True
        header = headers.get(b"authorization")
        if header is not None:
            return bearer_ok(header, self.token)
        purpose = TICKET_PATHS.get(path)
        if purpose is None or scope.get("method", "GET") not in ("GET", "HEAD"):
            return False
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        ticket = query.get("ticket", [""])[-1]
        return bool(ticket) and self.tickets.redeem(ticket, purpose)

    def bounded(self, receive: Receive) -> Receive:
        seen = 0

        async def bounded_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLarge(self.max_body)
            return message

        return bounded_receive

    async def refuse(
        self,
        scope: Scope,
        send: Send,
        status: int,
        code: str,
        message: str,
        extra: dict[str, str] | None = None,
    ) -> None:
        if scope["type"] == "websocket":
            # closing before accept: the server answers the upgrade with 403
            await send({"type": "websocket.close", "code": 1008, "reason": code})
            return
        body = json.dumps({"error": code, "message": message}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"cache-control", b"no-store"),
            (b"connection", b"close"),
        ]
        headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


class BodyTooLarge(Exception):
    """A body that grows past the limit while being read (a chunked upload)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"request body over {limit} bytes")
        self.limit = limit
