"""The local bridge: teller and queue software (Java, .NET, browsers) drive the keypads through
the agent over HTTP, Server-Sent Events and a WebSocket on the loopback interface.

FastAPI on uvicorn, in a thread of its own beside the agent's writer and keypad threads:

* ``models.py``: request and response models; the OpenAPI document (``/v1/openapi.json``) and
  the WebSocket message schemas (``/v1/ws.schema.json``) are generated from them;
* ``app.py``: the routes, SSE and the WebSocket;
* ``prompts.py``: the prompt book (prompt lifecycle on the event loop);
* ``security.py``: Host and Origin checks, CORS, tickets, bounds, the token;
* ``static/``: the example page (served at ``/`` with ``[bridge] example_page = true``).

Events reach the bridge through one hub sink: the writer thread appends to a list and wakes the
loop once per batch, so any number of streaming clients costs the writer nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import socket
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn
from fastapi.openapi.utils import get_openapi
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from ...errors import RatepadError
from ..config import ConfigError, load_or_create_token
from ..hub import AgentEvent
from . import models as m
from .agentapi import AgentApi
from .app import MAX_STREAMS, ApiError, Stream, create_app, device_json, error_json, ws_receive
from .prompts import PromptBook, PromptRecord
from .security import Guard, Tickets

__all__ = ["MAX_BODY", "MAX_CONNECTIONS", "Bridge", "load_or_create_token"]

MAX_BODY = 16 * 1024
MAX_CONNECTIONS = 400  # requests in progress at once (streams included)
WS_MAX_MESSAGE = 64 * 1024
KEEPALIVE_S = 15.0
WS_KINDS = {"rating": "rating", "status": "device_status", "connected": "connected", "lost": "lost"}
BODY_MODELS = (m.PromptRequest, m.CancelRequest, m.LoginRequest, m.LogoutRequest, m.TicketRequest)
PUBLIC_OPERATIONS = {"getOpenApi", "getWebSocketSchema"}
TICKET_OPERATIONS = {"streamEvents", "headEvents"}


class Bridge:
    """Serves the agent's keypads on ``address`` (loopback) until ``stop()``."""

    def __init__(
        self,
        agent: AgentApi,
        address: tuple[str, int],
        token: str,
        *,
        max_body: int = MAX_BODY,
        max_connections: int = MAX_CONNECTIONS,
        max_streams: int = MAX_STREAMS,
    ) -> None:
        self.agent = agent
        self.token = token.encode()
        self.allow_origins = frozenset(getattr(agent.config, "allow_origins", ()))
        self.example_page = bool(getattr(agent.config, "example_page", False))
        self.max_streams = max_streams
        host, port = address
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((host, port))
            self.sock.listen(128)
        except OSError as exc:
            self.sock.close()
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        self.sock.setblocking(False)
        self.stopping = threading.Event()
        self.tickets = Tickets()
        self.book: PromptBook | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._streams: set[Stream] = set()
        self._pending: deque[AgentEvent] = deque()
        self._pending_lock = threading.Lock()
        self._scheduled = False
        self._openapi: dict[str, Any] | None = None
        self._started = threading.Event()
        self.app = create_app(self)
        guard = Guard(
            self.app,
            token=self.token,
            tickets=self.tickets,
            hosts=self.hosts,
            allow_origins=self.allow_origins,
            max_body=max_body,
            max_connections=max_connections,
        )
        config = uvicorn.Config(
            guard,
            lifespan="off",
            log_level="warning",
            access_log=False,
            server_header=False,
            ws="websockets-sansio",
            ws_max_size=WS_MAX_MESSAGE,
            ws_ping_interval=20.0,
            timeout_keep_alive=120,
            timeout_graceful_shutdown=2,
            h11_max_incomplete_event_size=16 * 1024,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="ratepad-bridge", daemon=True)

    # -- addresses ------------------------------------------------------------------------------
    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def hosts(self) -> frozenset[str]:
        """The Host header values this bridge answers to."""
        host, port = self.address
        own = f"[{host}]" if ":" in host else host
        return frozenset({f"{own}:{port}", f"localhost:{port}"})

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()
        if not self._started.wait(10):
            raise ConfigError("the bridge did not start")

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.book = PromptBook(self.agent, self.loop)
        self.agent.hub.add_sink(self._sink)
        self.loop.call_soon(self._started.set)
        try:
            await self.server.serve(sockets=[self.sock])
        finally:
            self.agent.hub.remove_sink(self._sink)

    def stop(self) -> None:
        self.stopping.set()
        self.server.should_exit = True
        loop = self.loop
        if loop is not None and loop.is_running():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._wake_streams)
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        with contextlib.suppress(OSError):
            self.sock.close()

    def _wake_streams(self) -> None:
        for stream in self._streams:
            stream.wake.set()

    # -- events from the hub --------------------------------------------------------------------
    def _sink(self, event: AgentEvent) -> None:
        # any thread (the writer): append, and wake the loop once for whatever is waiting
        loop = self.loop
        if loop is None:
            return
        with self._pending_lock:
            self._pending.append(event)
            if self._scheduled:
                return
            self._scheduled = True
        with contextlib.suppress(RuntimeError):  # the loop is closing
            loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._pending_lock:
            events = list(self._pending)
            self._pending.clear()
            self._scheduled = False
        assert self.book is not None
        for event in events:
            self.book.on_event(event)
            for stream in list(self._streams):
                if not stream.offer(event):
                    self._streams.discard(stream)  # too slow: dropped

    def open_stream(self) -> Stream:
        if len(self._streams) >= self.max_streams:
            raise ApiError(503, "too_many", f"at most {self.max_streams} event streams at once")
        stream = Stream()
        self._streams.add(stream)
        return stream

    def close_stream(self, stream: Stream) -> None:
        self._streams.discard(stream)

    # -- prompts --------------------------------------------------------------------------------
    async def arm(
        self, serial: str, staff: str, timeout: float, prompt_id: int | None
    ) -> PromptRecord:
        assert self.book is not None
        handle = await run_in_threadpool(self.agent.prompt, serial, staff, timeout, prompt_id)
        key = self.agent.device(serial).serial or serial
        rec = self.book.armed(key, handle.prompt_id, staff, timeout)
        self.book.check_early_answer(rec)
        return rec

    async def cancel(self, serial: str, prompt_id: int) -> None:
        assert self.book is not None
        await run_in_threadpool(self.agent.cancel, serial, prompt_id)
        self.book.cancelled(self.agent.device(serial).serial or serial, prompt_id)

    async def wait_outcome(
        self,
        rec: PromptRecord,
        receive: Callable[[], Awaitable[Any]],
        *,
        cancel_on_disconnect: bool,
    ) -> PromptRecord | None:
        """``rec`` once closed, or None if the client went away first (then the prompt is
        cancelled on the keypad unless ``cancel_on_disconnect`` is False)."""

        async def disconnected() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass

        done = asyncio.ensure_future(rec.done.wait())
        gone = asyncio.ensure_future(disconnected())
        try:
            await asyncio.wait({done, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (done, gone):
                task.cancel()
        if rec.done.is_set():
            return rec
        if cancel_on_disconnect and rec.open:
            with contextlib.suppress(RatepadError):
                await self.cancel(rec.serial, rec.prompt_id)
        return None

    # -- the WebSocket --------------------------------------------------------------------------
    async def serve_websocket(self, ws: WebSocket) -> None:
        try:
            stream = self.open_stream()
        except ApiError:
            await ws.close(code=1013, reason="too many streams")
            return
        await ws.accept()
        lock = asyncio.Lock()
        mine: list[tuple[PromptRecord, bool]] = []  # (prompt, cancel when the client goes)
        tasks: set[asyncio.Task[None]] = set()

        async def send(obj: dict[str, Any]) -> None:
            async with lock:
                await ws.send_text(json.dumps(obj, ensure_ascii=False))

        async def push() -> None:
            while not self.stopping.is_set():
                event = await stream.next(KEEPALIVE_S)
                if stream.dropped and not stream.buffer:
                    await ws.close(code=1013, reason="too slow: reconnect")
                    return
                if event is not None:
                    out: dict[str, Any] = {"type": WS_KINDS.get(event.kind, event.kind)}
                    if event.id:
                        out["id"] = event.id
                    out["data"] = event.data
                    await send(out)
            await ws.close(code=1001, reason="agent stopping")

        async def prompt(msg: m.WsPrompt) -> None:
            try:
                rec = await self.arm(msg.serial, msg.staff, msg.timeout, msg.prompt_id)
            except Exception as exc:
                _, body = error_json(exc)
                await send({"type": "error", "ref": msg.ref, **body})
                return
            mine.append((rec, msg.on_disconnect == "cancel"))
            await rec.done.wait()
            keep = ("serial", "prompt_id", "state", "rating")
            answer = {k: v for k, v in rec.as_json().items() if k in keep}
            await send({"type": "prompt_outcome", "ref": msg.ref, **answer})

        async def handle(msg: Any) -> None:
            try:
                if isinstance(msg, m.WsCancel):
                    await self.cancel(msg.serial, msg.prompt_id)
                    await send({"type": "ok", "ref": msg.ref, "op": "cancel", "serial": msg.serial})
                elif isinstance(msg, m.WsLogin):
                    await run_in_threadpool(self.agent.login, msg.serial, msg.staff, msg.name)
                    await send({"type": "ok", "ref": msg.ref, "op": "login", "serial": msg.serial})
                elif isinstance(msg, m.WsLogout):
                    await run_in_threadpool(self.agent.logout, msg.serial, msg.staff)
                    await send({"type": "ok", "ref": msg.ref, "op": "logout", "serial": msg.serial})
                elif isinstance(msg, m.WsStatus):
                    devices = [device_json(w) for w in self.agent.workers]
                    await send({"type": "status", "ref": msg.ref, "devices": devices})
            except Exception as exc:
                _, body = error_json(exc)
                await send({"type": "error", "ref": msg.ref, **body})

        def spawn(coro: Awaitable[None]) -> None:
            task: asyncio.Task[None] = asyncio.ensure_future(coro)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        pusher = asyncio.ensure_future(push())
        try:
            while ws.client_state == WebSocketState.CONNECTED:
                try:
                    msg = await ws_receive(ws)
                except ApiError as exc:
                    _, body = error_json(exc)
                    await send({"type": "error", **body})
                    continue
                spawn(prompt(msg) if isinstance(msg, m.WsPrompt) else handle(msg))
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            pusher.cancel()
            for task in list(tasks):
                task.cancel()
            self.close_stream(stream)
            for rec, cancel in mine:
                if cancel and rec.open:
                    with contextlib.suppress(RatepadError):
                        await self.cancel(rec.serial, rec.prompt_id)

    # -- the OpenAPI document -------------------------------------------------------------------
    def openapi(self) -> dict[str, Any]:
        """The OpenAPI 3.1 document, generated from the routes and models (cached)."""
        if self._openapi is None:
            self._openapi = build_openapi(self)
        return copy.deepcopy(self._openapi)


def build_openapi(bridge: Bridge) -> dict[str, Any]:
    app = bridge.app
    doc = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        servers=[{"url": bridge.url}],
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for model in BODY_MODELS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    doc["components"]["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "description": "The agent's token."},
        "ticket": {
            "type": "apiKey",
            "in": "query",
            "name": "ticket",
            "description": "Single-use, from POST /v1/tickets (EventSource, WebSocket).",
        },
    }
    doc["security"] = [{"bearer": []}]
    doc["x-websocket"] = {
        "path": "/v1/ws",
        "schemas": "/v1/ws.schema.json",
        "authentication": "Authorization: Bearer, or ?ticket= from POST /v1/tickets (ws)",
    }
    ref = "#/components/schemas/"
    doc["paths"]["/v1/events"]["get"]["x-sse-events"] = {
        "rating": {"$ref": ref + "RatingOut"},
        "status": {"allOf": [{"$ref": ref + "StatusOut"}], "required": ["serial"]},
        "connected": {
            "type": "object",
            "required": ["serial", "firmware", "board", "keys", "boot_id"],
            "properties": {
                "serial": {"type": "string"},
                "firmware": {"type": "string"},
                "board": {"type": "string"},
                "keys": {"type": "integer"},
                "boot_id": {"type": "integer"},
                "journal_used": {"type": "integer"},
                "schema_matches": {"type": "boolean"},
            },
        },
        "lost": {
            "type": "object",
            "required": ["serial", "reason"],
            "properties": {"serial": {"type": "string"}, "reason": {"type": "string"}},
        },
    }
    for path_item in doc["paths"].values():
        for op in path_item.values():
            op["responses"].pop("422", None)
            if op["operationId"] in PUBLIC_OPERATIONS:
                op["security"] = []
            elif op["operationId"] in TICKET_OPERATIONS:
                op["security"] = [{"bearer": []}, {"ticket": []}]
    return doc


__all__ += ["WebSocketDisconnect", "build_openapi"]
