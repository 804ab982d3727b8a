"""The one live stream behind ``/api/v1/live`` and the web's ``/live/<node>/events``:
server-sent events of the subtree's new ratings, device states (and, for the wall, alerts).

The view checks who asks and for which subtree (in its request's thread, briefly) and returns
``open_stream``'s response: an asynchronous iterator that the ASGI server runs in its event loop
for as long as the stream lasts, so an open stream holds no thread. Limits (per user and per
process, ``RATEPAD_LIVE_MAX_PER_USER`` / ``RATEPAD_LIVE_MAX_STREAMS``) answer 429; a comment
line every ``KEEP_ALIVE`` seconds keeps proxies from closing an idle stream; the stream ends
after ``seconds``, when the server stops, or when its client reads too slowly.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Iterable

from django.http import HttpResponseBase, JsonResponse, StreamingHttpResponse

from ..ops.metrics import live_streams
from ..org.models import Node, Window
from .feed import LimitReached, Style, Subscription, feed

KEEP_ALIVE = 15.0  # seconds between two comment lines on a quiet stream
# at most one write per stream in this many seconds: under a busy ingest each write carries
# many events, so hundreds of streams cost the server a few writes each per second
COALESCE = 0.25
RETRY_AFTER = 30  # seconds, in a 429's Retry-After


class _EventStream:
    """The response's content; unsubscribes when done, or when dropped unstarted."""

    def __init__(self, sub: Subscription, seconds: float) -> None:
        self.sub, self.seconds = sub, seconds
        self._release = weakref.finalize(self, _unsubscribe, sub)
        live_streams(feed.open_streams())

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._events()

    async def _events(self) -> AsyncIterator[bytes]:
        try:
            await feed.start()
            deadline = time.monotonic() + self.seconds
            # the retry hint: a browser's EventSource reconnects after a second
            yield b"retry: 1000\n: live\n\n"
            while (left := deadline - time.monotonic()) > 0:
                data = await feed.wait(self.sub, min(KEEP_ALIVE, left))
                if data is None:
                    return  # closed: the server stops, or the client fell behind
                yield data or b": keep-alive\n\n"
                if data:
                    await asyncio.sleep(COALESCE)
        finally:
            self.close()

    def close(self) -> None:
        self._release()


def _unsubscribe(sub: Subscription) -> None:
    feed.unsubscribe(sub)
    live_streams(feed.open_streams())


def open_stream(
    *, user: int, node: Node, seconds: float, kinds: Iterable[str], style: Style
) -> HttpResponseBase:
    """The event stream of ``node``'s subtree for ``user``, or 429 over a limit."""
    branches = dict(Node.objects.filter(path__startswith=node.path).values_list("pk", "code"))
    windows = dict(Window.objects.filter(branch_id__in=branches).values_list("pk", "code"))
    try:
        sub = feed.subscribe(user, branches, windows, kinds, style)
    except LimitReached as exc:
        response = JsonResponse({"detail": str(exc)}, status=429)
        response["Retry-After"] = str(RETRY_AFTER)
        return response
    stream = StreamingHttpResponse(_EventStream(sub, seconds), content_type="text/event-stream")
    stream["Cache-Control"] = "no-cache"
    stream["X-Accel-Buffering"] = "no"  # a reverse proxy must not buffer the stream
    return stream
