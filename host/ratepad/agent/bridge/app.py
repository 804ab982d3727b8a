"""The bridge's routes (FastAPI): HTTP, Server-Sent Events and the WebSocket at ``/v1/ws``.

Blocking agent calls (a keypad command waits for its result) run in Starlette's thread pool;
waiting for a customer holds no thread (the prompt book is on the event loop). Event streams
(SSE and WebSocket) get events from the hub through one bounded buffer each (``Stream``): the
writer thread only appends and wakes the loop once, and a client whose buffer fills is dropped
(it reconnects with ``Last-Event-ID`` and catches up from the store).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import threading
import typing
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from fastapi import FastAPI, Query, Request, WebSocket, WebSocketDisconnect
from fastapi import Path as PathParam
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles

from ...errors import (
    CommandError,
    DeviceUnavailableError,
    DisconnectedError,
    LocalProtocolError,
    RatepadError,
    RatepadTimeout,
    UnknownDeviceError,
)
from ...eventformat import event_json
from ..hub import AgentEvent
from ..store import StoredRating, StoreError
from . import models as m
from .agentapi import AgentApi
from .prompts import PromptBook, PromptRecord
from .security import BodyTooLarge, Tickets

log = logging.getLogger("ratepad.bridge")

KEEPALIVE_S = 15.0
STREAM_BUFFER = 1000  # events a client may be behind before it is dropped
MAX_STREAMS = 100  # SSE and WebSocket clients at once
BACKLOG_PAGE = 500
MAX_JSON_DEPTH = 32
M = TypeVar("M", bound=BaseModel)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.extra = extra


class Stream:
    """One SSE or WebSocket client's bounded buffer of hub events."""

    def __init__(self) -> None:
        self.buffer: deque[AgentEvent] = deque()
        self.wake = asyncio.Event()
        self.dropped = False

    def offer(self, event: AgentEvent) -> bool:
        if len(self.buffer) >= STREAM_BUFFER:
            self.dropped = True
            self.wake.set()
            return False
        self.buffer.append(event)
        self.wake.set()
        return True

    async def next(self, timeout: float) -> AgentEvent | None:
        if not self.buffer and not self.dropped:
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout)
        return self.buffer.popleft() if self.buffer else None


# -- JSON bodies ----------------------------------------------------------------------------------
def _depth(value: Any, limit: int) -> int:
    stack = [(value, 1)]
    deepest = 0
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        if deepest > limit:
            return deepest
        if isinstance(node, dict):
            stack.extend((v, d + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, d + 1) for v in node)
    return deepest


def parse_json(raw: bytes) -> Any:
    """A JSON value from untrusted bytes: ApiError 400 for anything Python's json would choke
    on (bad UTF-8, deep nesting, huge numbers, lone surrogates, NaN)."""

    def no_constants(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    def bounded_int(text: str) -> int:
        if len(text) > 20:
            raise ValueError("number too large")
        return int(text)

    def bounded_float(text: str) -> float:
        if len(text) > 40:
            raise ValueError("number too long")
        value = float(text)
        if not math.isfinite(value):
            raise ValueError("number out of range")
        return value

    try:
        text = raw.decode("utf-8")
        value = json.loads(
            text, parse_constant=no_constants, parse_int=bounded_int, parse_float=bounded_float
        )
    except UnicodeDecodeError:
        raise ApiError(400, "bad_json", "the body is not UTF-8") from None
    except RecursionError:
        raise ApiError(400, "bad_json", "the body is nested too deeply") from None
    except ValueError as exc:
        raise ApiError(400, "bad_json", f"the body is not valid JSON: {exc}") from None
    if _depth(value, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise ApiError(400, "bad_json", f"the body is nested deeper than {MAX_JSON_DEPTH}")
    return value


def validate(model: type[M], value: Any) -> M:
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise ApiError(400, "bad_request", _first_error(exc.errors())) from None


def _first_error(errors: Any) -> str:
    if not errors:
        return "invalid request"
    e = errors[0]
    where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path"))
    msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
    if e.get("type") == "extra_forbidden":
        return f"unknown field {where!r}"
    return f"{where}: {msg}" if where else msg


async def body_of(request: Request, model: type[M]) -> M:
    raw = await request.body()
    value: Any = parse_json(raw) if raw.strip() else {}
    if not isinstance(value, dict):
        raise ApiError(400, "bad_json", "the body must be a JSON object")
    return validate(model, value)


# -- responses ------------------------------------------------------------------------------------
def _err(description: str) -> dict[str, Any]:
    return {"model": m.ErrorBody, "description": description}


COMMON: dict[int | str, dict[str, Any]] = {
    400: _err("Bad request: bad JSON, unknown field or parameter, value out of range."),
    401: _err("No or wrong bearer token (or ticket)."),
    403: _err("Foreign Origin on a state-changing request."),
    413: _err("Body over the size limit."),
    421: _err("Host header is not the bridge's own loopback address."),
    500: _err("The store failed (store_error) or a bug (internal); never shows internals."),
    503: _err("Too many requests at once (too_many), or the keypad is not connected."),
}
DEVICE: dict[int | str, dict[str, Any]] = {
    404: _err("No such keypad (unknown_device)."),
    409: _err("The keypad refused the command (refused, with its result code)."),
    502: _err("The keypad answered with an error (device_error)."),
    503: _err("The keypad is not connected (device_unavailable) or too many requests."),
    504: _err("The keypad did not answer in time (device_timeout)."),
}


def _responses(*extra: dict[Any, dict[str, Any]]) -> dict[int | str, dict[str, Any]]:
    out = dict(COMMON)
    for e in extra:
        out.update(e)
    return out


def _body(model: type[BaseModel], description: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": False,
            "description": description + " An empty body takes every default.",
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        }
    }


def _json(status: int, obj: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    h = {"Cache-Control": "no-store"}
    h.update(headers or {})
    return JSONResponse(jsonable_encoder(obj, exclude_none=False), status, headers=h)


class BridgeApi(Protocol):
    """What the routes use of the bridge that serves them (``bridge.Bridge``)."""

    @property
    def agent(self) -> AgentApi: ...

    @property
    def allow_origins(self) -> frozenset[str]: ...

    @property
    def example_page(self) -> bool: ...

    @property
    def book(self) -> PromptBook | None: ...

    @property
    def tickets(self) -> Tickets: ...

    @property
    def stopping(self) -> threading.Event: ...

    def open_stream(self) -> Stream: ...

    def close_stream(self, stream: Stream) -> None: ...

    async def arm(
        self, serial: str, staff: str, timeout: float, prompt_id: int | None
    ) -> PromptRecord: ...

    async def cancel(self, serial: str, prompt_id: int) -> None: ...

    async def wait_outcome(
        self,
        rec: PromptRecord,
        receive: Callable[[], Awaitable[Any]],
        *,
        cancel_on_disconnect: bool,
    ) -> PromptRecord | None: ...

    async def serve_websocket(self, ws: WebSocket) -> None: ...

    def openapi(self) -> dict[str, Any]: ...


def device_json(w: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"serial": w.serial, "url": w.url, "connected": w.connected}
    if w.info is not None:
        out.update(
            firmware=w.info.firmware_version,
            board=w.info.board,
            keys=w.info.key_count,
            boot_id=w.info.boot_id,
        )
    if w.status is not None:
        status = event_json(w.status)
        status.pop("event", None)
        status.pop("serial", None)
        out["status"] = status
    if not w.connected and w.last_error:
        out["error"] = w.last_error
    return out


def error_json(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """(status, body) for an exception; internals never leave the process."""
    if isinstance(exc, ApiError):
        return exc.status, {"error": exc.code, "message": str(exc), **exc.extra}
    if isinstance(exc, UnknownDeviceError):
        return 404, {"error": "unknown_device", "message": str(exc)}
    if isinstance(exc, DeviceUnavailableError | DisconnectedError):
        return 503, {"error": "device_unavailable", "message": str(exc)}
    if isinstance(exc, CommandError):
        code = exc.result.code
        name = code.name.lower() if hasattr(code, "name") else str(code)
        return 409, {"error": "refused", "message": str(exc), "result": name}
    if isinstance(exc, RatepadTimeout):
        return 504, {"error": "device_timeout", "message": str(exc)}
    if isinstance(exc, LocalProtocolError):
        return 400, {"error": "bad_request", "message": str(exc)}
    if isinstance(exc, StoreError):
        log.error("store: %s", exc)
        return 500, {"error": "store_error", "message": "the store cannot be read or written"}
    if isinstance(exc, RatepadError):
        return 502, {"error": "device_error", "message": str(exc)}
    if isinstance(exc, BodyTooLarge):
        return 413, {"error": "too_large", "message": str(exc)}
    log.error("bridge: unexpected %s", type(exc).__name__, exc_info=exc)
    return 500, {"error": "internal", "message": "internal error (logged by the agent)"}


# -- the app --------------------------------------------------------------------------------------
def create_app(bridge: BridgeApi) -> FastAPI:
    agent = bridge.agent
    app = FastAPI(
        title="ratepad agent bridge",
        version="1",
        description=(
            "The window agent's local bridge: arm keypads, read stored ratings, follow events. "
            "Authenticate with `Authorization: Bearer <token>`; browsers' EventSource and "
            "WebSocket use a single-use ticket from `POST /v1/tickets` in the URL instead. The "
            "WebSocket at `/v1/ws` speaks JSON messages described by `/v1/ws.schema.json`. "
            "Errors are JSON `{error, message}` (see ErrorBody)."
        ),
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(
        CORSMiddleware,
        allow_origins=sorted(bridge.allow_origins),
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
        expose_headers=["Location"],
        max_age=600,
    )

    # -- errors ---------------------------------------------------------------------------------
    @app.exception_handler(Exception)
    async def any_error(request: Request, exc: Exception) -> JSONResponse:
        status, body = error_json(exc)
        headers = {"Connection": "close"} if status == 413 else {}
        return _json(status, body, headers)

    for cls in (ApiError, RatepadError, StoreError, BodyTooLarge):
        app.add_exception_handler(cls, any_error)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _json(400, {"error": "bad_request", "message": _first_error(exc.errors())})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            body = {"error": "not_found", "message": f"no such endpoint: {request.url.path}"}
        elif exc.status_code == 405:
            body = {"error": "method_not_allowed", "message": "method not allowed"}
        else:
            body = {"error": "bad_request", "message": str(exc.detail)}
        return _json(exc.status_code, body, dict(exc.headers or {}))

    def book() -> PromptBook:
        assert bridge.book is not None
        return bridge.book

    def serial_of(serial: str) -> str:
        return agent.device(serial).serial or serial

    # -- devices --------------------------------------------------------------------------------
    @app.get(
        "/v1/devices",
        operation_id="listDevices",
        response_model=m.DeviceList,
        responses=_responses(),
        summary="Every configured keypad and its state",
    )
    async def list_devices() -> JSONResponse:
        return _json(200, {"devices": [device_json(w) for w in agent.workers]})

    @app.get(
        "/v1/devices/{serial}",
        operation_id="getDevice",
        response_model=m.DeviceOut,
        responses=_responses(DEVICE),
        summary="One keypad",
    )
    async def get_device(serial: str) -> JSONResponse:
        return _json(200, device_json(agent.device(serial)))

    @app.post(
        "/v1/devices/{serial}/prompt",
        operation_id="armPrompt",
        response_model=m.PromptOut,
        status_code=200,
        responses=_responses(
            DEVICE,
            {
                202: {
                    "model": m.PromptOut,
                    "description": "wait=false: armed; poll the Location.",
                    "headers": {"Location": {"schema": {"type": "string"}}},
                },
                409: _err(
                    "Refused by the keypad, or the prompt ended (prompt_ended: "
                    "cancelled or superseded, with state)."
                ),
                504: _err("No rating in time (timeout, state timed_out) or no keypad answer."),
            },
        ),
        openapi_extra=_body(m.PromptRequest, "The prompt."),
        summary="Arm a keypad: the rating (wait) or 202 with the prompt to poll",
    )
    async def arm_prompt(serial: str, request: Request) -> Response:
        body = await body_of(request, m.PromptRequest)
        rec = await bridge.arm(serial, body.staff, body.timeout, body.prompt_id)
        location = f"/v1/devices/{rec.serial}/prompts/{rec.prompt_id}"
        if not body.wait:
            return _json(202, rec.as_json(), {"Location": location})
        outcome = await bridge.wait_outcome(
            rec, request.receive, cancel_on_disconnect=body.on_disconnect == "cancel"
        )
        if outcome is None:  # the client went away
            return Response(status_code=204)
        return prompt_answer(outcome, location)

    def prompt_answer(rec: PromptRecord, location: str) -> JSONResponse:
        answer = rec.as_json()
        headers = {"Content-Location": location}
        if rec.state == "answered":
            return _json(200, answer, headers)
        if rec.state == "timed_out":
            msg = f"no rating within {rec.timeout_s:g} s"
            return _json(504, {"error": "timeout", "message": msg, **answer}, headers)
        msg = f"prompt {rec.prompt_id} {rec.state}"
        return _json(409, {"error": "prompt_ended", "message": msg, **answer}, headers)

    @app.post(
        "/v1/devices/{serial}/cancel",
        operation_id="cancelPrompt",
        response_model=m.CancelResponse,
        responses=_responses(DEVICE),
        openapi_extra=_body(m.CancelRequest, "Which prompt."),
        summary="Disarm a keypad",
    )
    async def cancel_prompt(serial: str, request: Request) -> JSONResponse:
        body = await body_of(request, m.CancelRequest)
        await bridge.cancel(serial, body.prompt_id)
        return _json(200, {"serial": serial, "prompt_id": body.prompt_id, "state": "cancelled"})

    @app.post(
        "/v1/devices/{serial}/login",
        operation_id="login",
        response_model=m.LoginResponse,
        responses=_responses(DEVICE),
        openapi_extra=_body(m.LoginRequest, "Who logs in."),
        summary="Log a staff member in on a keypad",
    )
    async def login(serial: str, request: Request) -> JSONResponse:
        body = await body_of(request, m.LoginRequest)
        await run_in_threadpool(agent.login, serial, body.staff, body.name)
        return _json(200, {"serial": serial, "staff": body.staff, "logged_in": True})

    @app.post(
        "/v1/devices/{serial}/logout",
        operation_id="logout",
        response_model=m.LoginResponse,
        responses=_responses(DEVICE),
        openapi_extra=_body(m.LogoutRequest, "Who logs out."),
        summary="Log a staff member out",
    )
    async def logout(serial: str, request: Request) -> JSONResponse:
        body = await body_of(request, m.LogoutRequest)
        await run_in_threadpool(agent.logout, serial, body.staff)
        return _json(200, {"serial": serial, "staff": body.staff, "logged_in": False})

    @app.get(
        "/v1/devices/{serial}/prompts/{prompt_id}",
        operation_id="getPrompt",
        response_model=m.PromptOut,
        responses=_responses(DEVICE, {404: _err("unknown_device or unknown_prompt.")}),
        summary="A prompt's state (and its rating once answered)",
    )
    async def get_prompt(
        serial: str, prompt_id: int = PathParam(ge=1, le=0xFFFFFFFF)
    ) -> JSONResponse:
        key = serial_of(serial)
        rec = book().get(key, prompt_id)
        if rec is not None:
            return _json(200, rec.as_json())
        row = await run_in_threadpool(agent.store.prompt, key, prompt_id)
        if row is None:
            raise ApiError(404, "unknown_prompt", f"no prompt {prompt_id} on {key}")
        rating = None
        if row.get("rating_seq"):
            stored = await run_in_threadpool(agent.store.rating_by_seq, key, row["rating_seq"])
            rating = stored.as_json() if stored is not None else None
        return _json(200, {**row, "rating": rating})

    # -- ratings --------------------------------------------------------------------------------
    @app.get(
        "/v1/ratings",
        operation_id="listRatings",
        response_model=m.RatingsPage,
        responses=_responses(),
        summary="Stored ratings, newest first by default (order=asc to page forward)",
    )
    async def list_ratings(
        request: Request,
        since: int = Query(0, ge=0, le=2**63 - 1, description="Only ids above this."),
        before: int | None = Query(None, ge=1, le=2**63 - 1, description="Only ids below."),
        limit: int = Query(100, ge=1, le=1000),
        serial: str | None = Query(None, max_length=64),
        order: str = Query("desc", pattern="^(asc|desc)$"),
    ) -> JSONResponse:
        known = {"since", "before", "limit", "serial", "order"}
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            raise ApiError(400, "bad_request", f"unknown parameter {unknown[0]!r}")
        if order == "asc":
            rows: list[StoredRating] = await run_in_threadpool(
                agent.store.ratings, since, limit, serial
            )
            if before is not None:
                rows = [r for r in rows if r.id < before]
            nxt = rows[-1].id if rows else since
            return _json(200, {"ratings": [r.as_json() for r in rows], "next": nxt})
        rows = await run_in_threadpool(agent.store.newest_ratings, limit, serial, since, before)
        page = {
            "ratings": [r.as_json() for r in rows],
            "next": max((r.id for r in rows), default=since),
            "before": rows[-1].id if rows else None,
        }
        return _json(200, page)

    @app.get(
        "/v1/ratings/{rating_id}",
        operation_id="getRating",
        response_model=m.RatingOut,
        responses=_responses({404: _err("No such rating (unknown_rating).")}),
        summary="One stored rating",
    )
    async def get_rating(rating_id: int = PathParam(ge=1, le=2**63 - 1)) -> Any:
        row = await run_in_threadpool(agent.store.rating, rating_id)
        if row is None:
            raise ApiError(404, "unknown_rating", f"no rating {rating_id}")
        return _json(200, row.as_json())

    @app.get(
        "/v1/summary",
        operation_id="getSummary",
        response_model=m.Summary,
        responses=_responses(),
        summary="Per keypad: ratings, satisfaction index, response rate",
    )
    async def get_summary() -> JSONResponse:
        return _json(200, {"devices": await run_in_threadpool(agent.store.summary)})

    @app.get(
        "/v1/health",
        operation_id="getHealth",
        response_model=m.Health,
        responses=_responses(
            {
                503: _err(
                    "The writer has stopped (writer_stopped); the body "
                    "carries the health fields too."
                )
            }
        ),
        summary="Is the agent storing and uploading? 200 if so, 503 once the writer stopped",
    )
    async def get_health() -> JSONResponse:
        health = await run_in_threadpool(agent.health)
        if health["ok"]:
            return _json(200, health)
        return _json(503, {"error": "writer_stopped", "message": str(health["writer"]), **health})

    # -- tickets and events ---------------------------------------------------------------------
    @app.post(
        "/v1/tickets",
        operation_id="createTicket",
        response_model=m.Ticket,
        status_code=201,
        responses=_responses(),
        openapi_extra=_body(m.TicketRequest, "What the ticket is for."),
        summary="A single-use ticket for EventSource (events) or WebSocket (ws)",
    )
    async def create_ticket(request: Request) -> JSONResponse:
        body = await body_of(request, m.TicketRequest)
        ticket = bridge.tickets.issue(body.purpose)
        return _json(
            201, {"ticket": ticket, "purpose": body.purpose, "expires_in": bridge.tickets.ttl}
        )

    sse_doc = {
        "content": {
            "text/event-stream": {
                "schema": {
                    "type": "string",
                    "description": "Events `rating` (data: Rating, id: its store id), "
                    "`status`, `connected`, `lost` (data: the keypad's JSON).",
                }
            }
        },
        "description": "The stream. With Last-Event-ID (or since) every stored rating after "
        "it comes first, paged through to the end, then live events without a gap.",
    }

    @app.get(
        "/v1/events",
        operation_id="streamEvents",
        responses=_responses({200: sse_doc, 503: _err("Too many streams open (too_many).")}),
        response_class=StreamingResponse,
        summary="Server-Sent Events: stored ratings, status, connected, lost",
    )
    async def stream_events(
        request: Request,
        since: int | None = Query(None, ge=0, le=2**63 - 1),
        ticket: str | None = Query(None, max_length=64, description="From POST /v1/tickets."),
    ) -> Response:
        del ticket  # checked by the guard
        last = request.headers.get("last-event-id")
        if last is not None:
            if not last.isdigit() or len(last) > 19:
                raise ApiError(400, "bad_request", "Last-Event-ID must be a rating id")
            since = int(last)
        headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        if request.method == "HEAD":
            return Response(media_type="text/event-stream", headers=headers)
        stream = bridge.open_stream()
        return StreamingResponse(
            _sse(bridge, stream, since), media_type="text/event-stream", headers=headers
        )

    @app.head(
        "/v1/events",
        operation_id="headEvents",
        responses=_responses(
            {
                200: {
                    "description": "The stream's headers, no body.",
                    "content": {"text/event-stream": {"schema": {"type": "string"}}},
                }
            }
        ),
        summary="Headers of the event stream (no body)",
    )
    async def head_events() -> Response:
        return Response(media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    # -- documents ------------------------------------------------------------------------------
    @app.get(
        "/v1/openapi.json",
        operation_id="getOpenApi",
        responses={200: {"description": "This document."}, 421: COMMON[421], 500: COMMON[500]},
        summary="This OpenAPI document (no token needed)",
    )
    async def openapi_doc() -> JSONResponse:
        return _json(200, bridge.openapi())

    @app.get(
        "/v1/ws.schema.json",
        operation_id="getWebSocketSchema",
        responses={
            200: {"description": "JSON Schemas of /v1/ws messages (one with ?message=)."},
            400: COMMON[400],
            404: _err("No such message (unknown_message)."),
            421: COMMON[421],
            500: COMMON[500],
        },
        summary="JSON Schemas of the WebSocket messages (no token needed)",
    )
    async def ws_schema(
        message: str | None = Query(
            None, max_length=64, description="One message's own schema: client/TYPE, server/TYPE"
        ),
    ) -> JSONResponse:
        if message is None:
            return _json(200, ws_schemas())
        schema = ws_message_schemas().get(message)
        if schema is None:
            raise ApiError(404, "unknown_message", f"no WebSocket message {message!r}")
        return _json(200, schema)

    # -- WebSocket ------------------------------------------------------------------------------
    @app.websocket("/v1/ws")
    async def websocket(ws: WebSocket) -> None:
        await bridge.serve_websocket(ws)

    # -- the example page -----------------------------------------------------------------------
    if bridge.example_page:
        static = Path(__file__).resolve().parent / "static"  # package data (pyproject)

        @app.get("/", include_in_schema=False)
        async def index() -> HTMLResponse:
            return HTMLResponse((static / "index.html").read_text(encoding="utf-8"))

        app.mount("/static", StaticFiles(directory=static), name="static")

    return app


async def _sse(bridge: BridgeApi, stream: Stream, since: int | None) -> AsyncIterator[str]:
    store = bridge.agent.store
    try:
        yield "retry: 2000\n\n"
        replayed = 0
        if since is not None:  # the whole backlog, page by page, then live without a gap
            cursor = since
            while not bridge.stopping.is_set():
                rows = await run_in_threadpool(store.ratings, cursor, BACKLOG_PAGE)
                for row in rows:
                    yield sse_event("rating", row.as_json(), row.id)
                    cursor = row.id
                if len(rows) < BACKLOG_PAGE:
                    break
            replayed = cursor
        while not bridge.stopping.is_set():
            event = await stream.next(KEEPALIVE_S)
            if stream.dropped and not stream.buffer:
                yield ": dropped (too slow); reconnect with Last-Event-ID\n\n"
                return
            if event is None:
                yield ": keepalive\n\n"
                continue
            if event.kind == "rating" and event.id <= replayed:
                continue
            yield sse_event(event.kind, event.data, event.id)
    finally:
        bridge.close_stream(stream)


def sse_event(kind: str, data: dict[str, Any], event_id: int) -> str:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def ws_schemas() -> dict[str, Any]:
    """JSON Schemas of the WebSocket messages, generated from the models: every message of a
    direction in one, and where each message's own schema is (what code generators read)."""
    return {
        "$comment": "Messages of the ratepad bridge WebSocket at /v1/ws (JSON text frames).",
        "client": TypeAdapter(m.WsClientMessage).json_schema(),
        "server": TypeAdapter(m.WsServerMessage).json_schema(),
        "messages": {name: f"/v1/ws.schema.json?message={name}" for name in ws_message_schemas()},
    }


def ws_message_schemas() -> dict[str, dict[str, Any]]:
    """Each WebSocket message's own JSON Schema, by ``direction/type`` (``client/prompt``)."""
    out: dict[str, dict[str, Any]] = {}
    for direction, union in (("client", m.WsClientMessage), ("server", m.WsServerMessage)):
        for model in typing.get_args(typing.get_args(union)[0]):
            for kind in typing.get_args(model.model_fields["type"].annotation):
                out[f"{direction}/{kind}"] = model.model_json_schema()
    return out


WS_IN: TypeAdapter[Any] = TypeAdapter(m.WsClientMessage)


async def ws_receive(ws: WebSocket) -> Any:
    """The next client message, validated; ApiError for a bad one."""
    text = await ws.receive_text()
    value = parse_json(text.encode("utf-8", "surrogatepass"))
    try:
        return WS_IN.validate_python(value)
    except ValidationError as exc:
        ref = value.get("ref", "") if isinstance(value, dict) else ""
        raise ApiError(400, "bad_request", _first_error(exc.errors()), ref=str(ref)[:64]) from None


__all__ = [
    "ApiError",
    "Stream",
    "WebSocketDisconnect",
    "create_app",
    "device_json",
    "error_json",
    "parse_json",
    "sse_event",
    "ws_message_schemas",
    "ws_receive",
    "ws_schemas",
]
