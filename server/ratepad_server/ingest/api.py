"""``POST /api/v1/ingest/batch``: an agent's upload (agent key only)."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router

from ..api.auth import AgentAuth
from ..ops.metrics import count_batch
from .keys import Revoked
from .models import AgentKey
from .schemas import BatchIn, BatchOut
from .service import commit_batch

router = Router(tags=["ingest"])


@router.post("/batch", auth=AgentAuth(), response=BatchOut)
def upload_batch(request: HttpRequest, batch: BatchIn) -> BatchOut:
    """Store a batch of ratings, prompts, staff sessions and device states; answers only once
    the batch is committed. Sending the same batch again stores nothing twice."""
    agent = getattr(request, "auth", None)  # set by ninja's auth
    assert isinstance(agent, AgentKey)
    return count_batch(batch, lambda: commit_batch(agent, batch), refused=Revoked)
