"""The ASGI application and the server ``ratepad server run`` runs it in (uvicorn).

An event loop holds every connection, so idle keep-alive sockets and open live streams cost no
thread. Around Django:

* ``OneHopHandler``: Django's ASGI handler runs its middleware in async mode, and every
  ``MiddlewareMixin`` step and the sync view then hop between the event loop and the request's
  thread (about twenty hops a request, most of an agent's heartbeat's CPU). Here the whole
  request (the request signals, every middleware, the view) runs as one synchronous call on
  the request's thread, as under WSGI; the answer is sent from the event loop, an event
  stream's body too (its view returns an asynchronous iterator).
* ``SyncViewThreads``: Django runs a request's synchronous steps (middleware, sync views) on a
  thread of that request's own (asgiref's ``ThreadSensitiveContext``), a new thread per
  concurrent request and without bound. Here each request takes one of ``--threads``
  single-thread executors instead, after its body has arrived (a slow client does not hold one
  while it sends), and gives it back when its answer is done, or, for an event stream, once
  the stream's headers are sent: the stream itself runs in the event loop.
* ``ForwardedOnlyFrom``: ``X-Forwarded-*`` headers count only from ``--trusted-proxy``; anyone
  else's are removed before uvicorn's proxy middleware and Django read them.
* ``RequestDeadlineH11``: uvicorn waits for a request's head and body as long as the client
  takes (its keep-alive timer stops at the first byte), so sockets that send half a request
  line would pile up; a request must arrive whole within ``REQUEST_READ_TIMEOUT`` seconds.

On SIGTERM or SIGINT (``serve``): stop accepting, end the live streams, let requests in flight
finish (at most ``GRACEFUL_TIMEOUT`` seconds), then return: the caller stops the alert worker
and exits 0. A second SIGINT stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from types import FrameType
from typing import IO, Any, cast

import h11
from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.http import HttpResponseBase
from django.urls import set_script_prefix
from uvicorn.protocols.http.h11_impl import H11Protocol

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ratepad_server.settings")

Scope = dict[str, Any]
Message = dict[str, Any]
# Django's handler takes any mapping as a message
DjangoReceive = Callable[[], Awaitable[Mapping[str, Any]]]
DjangoSend = Callable[[Mapping[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

# seconds for a request's head and body to arrive (``RATEPAD_REQUEST_READ_TIMEOUT``)
REQUEST_READ_TIMEOUT = float(settings.RATEPAD_REQUEST_READ_TIMEOUT)
GRACEFUL_TIMEOUT = 20  # seconds for requests in flight when the server stops
KEEP_ALIVE_TIMEOUT = 5  # seconds an idle keep-alive connection stays open
PREREAD_BYTES = 1024 * 1024  # a body up to this size is read before a thread is taken


class SyncViewThreads:
    """At most ``threads`` requests run Django's synchronous code at a time, each on one
    thread for the whole request (Django's thread-sensitivity: one database connection)."""

    def __init__(self, app: App, threads: int) -> None:
        self.app = app
        self._free: asyncio.Queue[ThreadPoolExecutor] = asyncio.Queue()
        for i in range(threads):
            self._free.put_nowait(ThreadPoolExecutor(1, thread_name_prefix=f"ratepad-{i}"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        receive = await _preread(receive)
        executor = await self._free.get()
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                self._free.put_nowait(executor)

        async def send_and_release(message: Message) -> None:
            if message["type"] == "http.response.start" and _is_event_stream(message):
                release()  # what is left of the request runs in the event loop
            await send(message)

        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.app(scope, receive, send_and_release)
        finally:
            release()


def _is_event_stream(start: Message) -> bool:
    return any(
        name.lower() == b"content-type" and value.startswith(b"text/event-stream")
        for name, value in start.get("headers", ())
    )


async def _preread(receive: Receive) -> Receive:
    """A ``receive`` that first replays the body's messages read here (up to
    ``PREREAD_BYTES``), then asks the client's."""
    early: list[Message] = []
    size = 0
    while size < PREREAD_BYTES:
        message = await receive()
        early.append(message)
        size += len(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body", False):
            break

    async def replay() -> Message:
        return early.pop(0) if early else await receive()

    return replay


class OneHopHandler(ASGIHandler):
    """Django's ASGI handler with a synchronous middleware chain: one thread hop a request."""

    def __init__(self) -> None:
        BaseHandler.__init__(self)
        self.load_middleware(is_async=False)

    async def handle(self, scope: Scope, receive: DjangoReceive, send: DjangoSend) -> None:
        try:
            body = await self.read_body(receive)
        except RequestAborted:
            return
        response = await sync_to_async(self._respond, thread_sensitive=True)(scope, body)
        if not response.streaming:
            # closed already (its content is all in memory): the connections are handed
            # back in the request's thread, before the answer goes out
            await self.send_response(response, send)
            return
        await self._stream(response, receive, send)

    def _respond(self, scope: Scope, body: IO[bytes]) -> HttpResponseBase:
        """The whole request, on the request's thread: what Django's WSGI handler does."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body)
        if request is not None:
            response = self.get_response(request)
            response._handler_class = self.__class__  # type: ignore[attr-defined]
        else:
            body.close()
        assert response is not None
        if not response.streaming:
            response.close()  # request_finished: database connections, the body's file
        return response

    async def _stream(
        self, response: HttpResponseBase, receive: DjangoReceive, send: DjangoSend
    ) -> None:
        """An event stream: sent from the event loop until it ends or the client leaves (as
        Django's ``handle`` does), then closed on the request's thread."""
        sending = asyncio.create_task(self.send_response(response, send))
        leaving = asyncio.create_task(self.listen_for_disconnect(receive))
        try:
            await asyncio.wait([sending, leaving], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (leaving, sending):
                if not task.done():
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError, RequestAborted):
                    await task
            await sync_to_async(response.close, thread_sensitive=True)()


class ForwardedOnlyFrom:
    """Drop ``X-Forwarded-*`` headers unless the peer is the trusted proxy (``*``: any)."""

    def __init__(self, app: App, proxy: str | None) -> None:
        self.app, self.proxy = app, proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not self._trusted(scope.get("client")):
            scope = {
                **scope,
                "headers": [(k, v) for k, v in scope["headers"]
                            if not k.lower().startswith(b"x-forwarded-")],
            }  # fmt: skip
        await self.app(scope, receive, send)

    def _trusted(self, client: tuple[str, int] | None) -> bool:
        if self.proxy is None or client is None:
            return False
        return self.proxy == "*" or client[0] == self.proxy


def build(threads: int, trusted_proxy: str | None) -> App:
    """Django behind the thread pool, the forwarded headers believed only from the proxy."""
    import django
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    django.setup(set_prefix=False)
    handler: App = OneHopHandler()  # type: ignore[assignment]
    app: App = SyncViewThreads(handler, threads)
    if trusted_proxy:  # the client's address and scheme from X-Forwarded-For / -Proto
        app = cast(App, ProxyHeadersMiddleware(cast(Any, app), trusted_hosts=trusted_proxy))
    return ForwardedOnlyFrom(app, trusted_proxy)


application = build(16, os.environ.get("RATEPAD_TRUSTED_PROXY"))


class RequestDeadlineH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, with a deadline for each request to arrive whole."""

    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._watch()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._watch()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _watch(self) -> None:
        """Armed while a request is awaited or arriving; off while it is being answered."""
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            if self._deadline is None:
                self._deadline = self.loop.call_later(REQUEST_READ_TIMEOUT, self._expired)
        else:
            self._disarm()

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY):
            self.transport.close()  # a disconnect for a request whose body was awaited


def bind(host: str, port: int) -> socket.socket:
    """The listening socket (OSError if the address is taken or not ours)."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    return socket.create_server((host, port), family=family, backlog=2048)


def _more_files() -> None:
    """Every open stream and idle socket is a file descriptor: raise the soft limit (often
    1024) to the hard one the service manager allows."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def serve(
    sock: socket.socket,
    threads: int,
    trusted_proxy: str | None,
    on_ready: Callable[[], None] = lambda: None,
) -> None:
    """Serve until SIGTERM or SIGINT; returns once requests in flight have finished.
    ``on_ready`` is called once requests are answered (not before: the line a supervisor or a
    user waits for must not come while the application is still being built)."""
    import uvicorn

    from .live.feed import feed

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                on_ready()

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            # uvicorn re-raises the signal after its shutdown (the process would die of it):
            # here a stop by signal is the normal end, exit status 0
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True
            self.should_exit = True
            feed.close_all()  # streams end now; uvicorn then waits for the other requests

    _more_files()
    config = uvicorn.Config(
        build(threads, trusted_proxy),
        http=RequestDeadlineH11,
        lifespan="off",  # Django has no lifespan events
        proxy_headers=False,  # ``build`` applies them, from the trusted proxy only
        access_log=False,
        log_config=None,  # Django's LOGGING: warnings and errors to stderr
        server_header=False,
        timeout_keep_alive=KEEP_ALIVE_TIMEOUT,
        timeout_graceful_shutdown=GRACEFUL_TIMEOUT,
        ws="none",
    )
    Server(config).run(sockets=[sock])
