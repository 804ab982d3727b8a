"""The window agent as ``ratepad agent`` runs it: the composition root.

    Agent = AgentCore (keypads -> writer -> store, the hub)
          + Bridge    (``listen``: HTTP, SSE, WebSocket on loopback; it sees the agent only
                       through ``bridge.agentapi.AgentApi``)
          + Uploader  (``[upload]``: the store's outbox to the ratepad server)

The core imports neither the bridge nor the uploader; this module wires them to it, starts
them after it and stops them around it (no new requests first; the uploader after the writer
committed what it had).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .agent import AgentCore
from .config import load_or_create_token
from .store import StoreError

if TYPE_CHECKING:
    from .bridge import Bridge
    from .upload import Uploader

__all__ = ["Agent"]


class Agent(AgentCore):
    """Runs the keypads of ``config``, the writer, and (if ``listen``) the HTTP bridge and (if
    ``upload``) the uploader."""

    bridge: Bridge | None = None
    uploader: Uploader | None = None
    token: str | None = None

    def start(self) -> Agent:
        super().start()
        # imported when wanted: reading a store or running keypads alone does not load the web
        # stack (FastAPI, uvicorn) nor the HTTP client
        if self.config.listen is not None:
            from .bridge import Bridge

            self.token = self.config.token or load_or_create_token(self.config.token_file)
            bridge = Bridge(self, self.config.listen, self.token)
            bridge.start()
            self.bridge = bridge
        if self.config.upload is not None:
            from .upload import Uploader

            self.uploader = Uploader(self.store.path, self.config.upload, log=self.log).start()
        return self

    def __enter__(self) -> Agent:
        return self.start()

    @property
    def bridge_url(self) -> str | None:
        return self.bridge.url if self.bridge is not None else None

    def stop(self) -> None:
        """Graceful stop: no new requests, commit and ACK what was received, close the links;
        whatever the uploader had not sent yet goes next time."""
        if self.stopped:
            return
        if self.bridge is not None:
            self.bridge.stop()
        super().stop()
        if self.uploader is not None:
            self.uploader.stop()

    def health(self) -> dict[str, object]:
        """The agent's health (``GET /v1/health``): is the writer storing, how many keypads
        are connected, and, when uploading, how much waits and why the last try failed."""
        out = super().health()
        up = self.uploader
        out["upload"] = None
        if up is not None:
            try:
                pending: int | None = self.store.upload_pending()
            except StoreError:
                pending = None
            out["upload"] = {
                "pending": pending,
                "batches": up.batches,
                "ratings": up.ratings,
                "failures": up.failures,
                "rejected": up.rejected,
                "heartbeats": up.heartbeats,
                "last_error": up.last_error,
            }
        return out
