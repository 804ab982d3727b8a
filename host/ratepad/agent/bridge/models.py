"""Request and response models of the bridge: the OpenAPI document and the WebSocket message
schemas are generated from these (pydantic), so the document cannot drift from the code.

Text limits: the wire counts UTF-8 bytes, JSON Schema counts characters, so the schema says
exactly what the server accepts: a staff id is printable ASCII (a character is a byte), at most
16; a display name is at most 32 characters and is cut to the 32 bytes the keypad shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, create_model

from ..store import RATING_FIELDS

__all__ = [
    "CancelRequest",
    "CancelResponse",
    "DeviceList",
    "DeviceOut",
    "ErrorBody",
    "LoginRequest",
    "LoginResponse",
    "LogoutRequest",
    "PromptOut",
    "PromptRequest",
    "PromptState",
    "RatingOut",
    "RatingsPage",
    "StatusOut",
    "Summary",
    "SummaryRow",
    "Ticket",
    "TicketRequest",
]

MAX_PROMPT_S = 3600.0
PromptState = Literal["issued", "answered", "timed_out", "cancelled", "superseded"]


def _utf8(max_bytes: int) -> Any:
    def check(value: str) -> str:
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text (no lone surrogates)") from None
        if size > max_bytes:
            raise ValueError(f"must be at most {max_bytes} bytes in UTF-8 (got {size})")
        return value

    return check


Staff = Annotated[
    str,
    Field(
        max_length=16,
        pattern=r"^[\x20-\x7e]*$",
        description="Staff id: printable ASCII, at most 16 characters (16 bytes on the wire).",
    ),
    AfterValidator(_utf8(16)),
]


def _cut(max_bytes: int) -> Any:
    def cut(value: str) -> str:
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be valid Unicode text (no lone surrogates)") from None
        return data[:max_bytes].decode("utf-8", "ignore")  # on a character boundary

    return cut


Name = Annotated[
    str,
    Field(
        max_length=32,
        description="Display name, at most 32 characters; the keypad shows at most 32 bytes "
        "of UTF-8, so a longer name is cut there (on a character boundary).",
        json_schema_extra={"x-maxBytes": 32},
    ),
    AfterValidator(_cut(32)),
]


def _whole(value: Any) -> Any:
    # JSON Schema's integer includes 234.0; a JSON number with a fraction stays an error
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


Whole = BeforeValidator(_whole)
PromptId = Annotated[
    int, Field(ge=1, le=0xFFFFFFFF, description="Prompt id on this keypad."), Whole
]
AnyPromptId = Annotated[int, Field(ge=0, le=0xFFFFFFFF), Whole]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorBody(BaseModel):
    """Every error: a machine-readable ``error`` code and a sentence for people."""

    model_config = ConfigDict(extra="allow")
    error: str = Field(
        description="bad_request, bad_json, unauthorized, forbidden_origin, bad_host, not_found, "
        "method_not_allowed, unknown_device, unknown_prompt, unknown_rating, too_large, "
        "too_many, refused, prompt_ended, timeout, device_unavailable, device_timeout, "
        "device_error, store_error, writer_stopped, internal"
    )
    message: str
    state: PromptState | None = Field(None, description="Prompt errors: the prompt's state.")
    serial: str | None = None
    prompt_id: int | None = None
    result: str | None = Field(None, description="refused: the keypad's result code.")


class PromptRequest(_In):
    """Arm a keypad. With ``wait`` (default) the answer is the rating or a 504 timeout; without
    it, 202 with ``Location`` of the prompt to poll."""

    staff: Staff = ""
    timeout: Annotated[
        float, Field(gt=0, le=MAX_PROMPT_S, description="Seconds the keypad waits.")
    ] = 30.0
    wait: bool = True
    prompt_id: PromptId | None = Field(
        None, description="Your own id (issuing an existing id starts that prompt afresh)."
    )
    on_disconnect: Literal["cancel", "keep"] = Field(
        "cancel",
        description="wait=true only: a client that goes away before the answer cancels the "
        "prompt on the keypad (cancel), or leaves it armed (keep).",
    )


class CancelRequest(_In):
    prompt_id: AnyPromptId = Field(0, description="0 cancels whatever prompt is armed.")


class LoginRequest(_In):
    staff: Annotated[Staff, Field(min_length=1)]
    name: Name = ""


class LogoutRequest(_In):
    staff: Staff = Field("", description="Empty: whoever is logged in.")


class TicketRequest(_In):
    purpose: Literal["events", "ws"] = Field(
        "events", description="events: GET /v1/events?ticket=...; ws: /v1/ws?ticket=..."
    )


class Ticket(BaseModel):
    ticket: str = Field(description="Single-use; put it in the URL's ticket parameter.")
    purpose: Literal["events", "ws"]
    expires_in: float = Field(description="Seconds it stays valid if unused.")


# the stored rating's fields, in the order of its JSON, from the store's one record of them
# (to type checkers a model that allows any field, which is what it is to them)
if TYPE_CHECKING:
    RatingOut = _Out
else:
    RatingOut = create_model(
        "RatingOut",
        __base__=_Out,
        **{f.name: (f.type, Field(description=f.doc or None)) for f in RATING_FIELDS},
    )


class PromptOut(_Out):
    serial: str
    prompt_id: int
    state: PromptState
    staff_id: str = ""
    issued_at_ms: int | None = None
    timeout_ms: int | None = None
    closed_at_ms: int | None = None
    rating_seq: int | None = None
    rating: RatingOut | None = Field(None, description="Once answered: the stored rating.")


class StatusOut(_Out):
    state: str | int
    faults: list[str]
    unacked: int
    presses: int
    unprompted: int
    repeats: int
    multi_key: int
    stuck_keys: int
    uptime_ms: int


class DeviceOut(_Out):
    serial: str | None
    url: str
    connected: bool
    firmware: str | None = None
    board: str | None = None
    keys: int | None = None
    boot_id: int | None = None
    status: StatusOut | None = None
    error: str | None = Field(None, description="Why it is not connected.")


class DeviceList(BaseModel):
    devices: list[DeviceOut]


class CancelResponse(BaseModel):
    serial: str
    prompt_id: int
    state: Literal["cancelled"]


class LoginResponse(BaseModel):
    serial: str
    staff: str
    logged_in: bool


class RatingsPage(BaseModel):
    ratings: list[RatingOut]
    next: int = Field(description="order=asc: pass as since for the next page (the last id).")
    before: int | None = Field(
        None, description="order=desc: pass as before for the next (older) page."
    )


class SummaryRow(_Out):
    serial: str
    ratings: int
    satisfaction_index: float | None
    satisfied_share: float | None
    unprompted: int
    prompts: int
    answered: int
    response_rate: float | None


class Summary(BaseModel):
    devices: list[SummaryRow]


class UploadHealth(BaseModel):
    pending: int | None = Field(description="ratings and outbox rows not yet on the server")
    batches: int
    ratings: int
    failures: int
    rejected: int = Field(description="items the server refused for good (kept in the store)")
    heartbeats: int
    last_error: str


class Health(BaseModel):
    ok: bool = Field(description="false once the writer has stopped (the answer is then 503)")
    writer: str
    stored: int
    duplicates: int
    quarantined: int
    store_errors: int
    devices: int = Field(description="keypads configured")
    connected: int = Field(description="... of them connected now")
    upload: UploadHealth | None = Field(description="null when the agent does not upload")


# -- WebSocket messages (/v1/ws) -------------------------------------------------------------
class _WsIn(_In):
    ref: Annotated[str, Field(max_length=64)] = Field(
        "", description="Your reference: the answer to this message carries it back."
    )


class WsPrompt(_WsIn):
    """Arm a keypad; the one answer is ``prompt_outcome`` (answered with the rating, timed_out,
    cancelled or superseded), or ``error``."""

    type: Literal["prompt"]
    serial: str
    staff: Staff = ""
    timeout: Annotated[float, Field(gt=0, le=MAX_PROMPT_S)] = 30.0
    prompt_id: PromptId | None = None
    on_disconnect: Literal["cancel", "keep"] = "cancel"


class WsCancel(_WsIn):
    type: Literal["cancel"]
    serial: str
    prompt_id: AnyPromptId = 0


class WsLogin(_WsIn):
    type: Literal["login"]
    serial: str
    staff: Annotated[Staff, Field(min_length=1)]
    name: Name = ""


class WsLogout(_WsIn):
    type: Literal["logout"]
    serial: str
    staff: Staff = ""


class WsStatus(_WsIn):
    """Ask for every keypad's state; answered with ``status``."""

    type: Literal["status"]


WsClientMessage = Annotated[
    WsPrompt | WsCancel | WsLogin | WsLogout | WsStatus, Field(discriminator="type")
]


class WsOutcome(BaseModel):
    type: Literal["prompt_outcome"] = "prompt_outcome"
    ref: str = ""
    serial: str
    prompt_id: int
    state: PromptState
    rating: RatingOut | None = None


class WsOk(BaseModel):
    type: Literal["ok"] = "ok"
    ref: str = ""
    op: Literal["cancel", "login", "logout"]
    serial: str


class WsStatusOut(BaseModel):
    type: Literal["status"] = "status"
    ref: str = ""
    devices: list[DeviceOut]


class WsError(ErrorBody):
    type: Literal["error"] = "error"
    ref: str = ""


class WsPush(BaseModel):
    """Pushed to every client: ``rating`` (stored), ``connected``, ``lost``, ``device_status``."""

    model_config = ConfigDict(extra="allow")
    type: Literal["rating", "connected", "lost", "device_status"]
    id: int | None = Field(None, description="rating: its store id.")
    data: dict[str, Any]


WsServerMessage = Annotated[
    WsOutcome | WsOk | WsStatusOut | WsError | WsPush, Field(discriminator="type")
]
