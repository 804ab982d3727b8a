"""The OpenAPI 3.1 description of the agent's HTTP bridge (served at ``/v1/openapi.json``)."""

from __future__ import annotations

from typing import Any

from .. import __version__

__all__ = ["openapi_document"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


_SERIAL = {
    "name": "serial",
    "in": "path",
    "required": True,
    "description": "the keypad's serial number (see GET /v1/devices)",
    "schema": {"type": "string"},
}
_COMMON_ERRORS = {
    "401": _error("missing or wrong bearer token"),
    "404": _error("unknown keypad (`unknown_device`) or endpoint"),
    "405": _error("method not allowed on this path"),
}
_COMMAND_ERRORS = {
    **_COMMON_ERRORS,
    "400": _error("malformed JSON (`bad_json`) or bad fields (`bad_request`); nothing was done"),
    "409": _error("the keypad refused the command (`refused`, with its `result` code)"),
    "411": _error("a chunked body: send a Content-Length"),
    "413": _error("request body over 16 KiB"),
    "503": _error("the keypad is not connected now (`device_unavailable`)"),
    "504": _error("the keypad did not answer the command in time (`device_timeout`)"),
}


def _body(schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _schemas() -> dict[str, Any]:
    text = {"type": "string"}
    integer = {"type": "integer"}
    return {
        "Error": {
            "type": "object",
            "required": ["error", "message"],
            "properties": {
                "error": {
                    "type": "string",
                    "description": "unauthorized, bad_json, bad_request, not_found, "
                    "unknown_device, unknown_prompt, method_not_allowed, length_required, "
                    "too_large, refused, device_unavailable, device_timeout, device_error, "
                    "store_error, internal, timeout",
                },
                "message": text,
            },
            "additionalProperties": True,
        },
        "Rating": {
            "type": "object",
            "description": "A stored rating (only committed ratings are ever reported).",
            "properties": {
                "id": {"type": "integer", "description": "store id; increases with each rating"},
                "serial": text,
                "journal_seq": {"type": "integer", "description": "the keypad's journal seq"},
                "boot_id": integer,
                "uptime_ms": integer,
                "time_ms": {"type": "integer", "description": "ms since 1970 UTC"},
                "time": {"type": "string", "format": "date-time"},
                "time_exact": {"type": "boolean"},
                "score": {"type": "integer", "description": "1..key_count (0: damaged)"},
                "key_count": integer,
                "level": {"type": ["string", "null"], "examples": ["very_satisfied"]},
                "level_value": {"type": ["integer", "null"], "description": "0..100"},
                "staff_id": text,
                "prompt_id": {"type": "integer", "description": "0 for an unprompted press"},
                "prompted": {"type": "boolean"},
                "flags": integer,
                "flag_names": {"type": "array", "items": text},
                "received_at_ms": integer,
            },
        },
        "Device": {
            "type": "object",
            "properties": {
                "serial": {"type": ["string", "null"], "description": "null until first hello"},
                "url": text,
                "connected": {"type": "boolean"},
                "firmware": text,
                "board": text,
                "keys": integer,
                "boot_id": integer,
                "status": {"type": "object", "description": "the keypad's last heartbeat"},
                "error": {"type": "string", "description": "why it cannot be reached"},
            },
        },
        "PromptRequest": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "staff": {"type": "string", "maxLength": 16, "default": ""},
                "timeout": {
                    "type": "number",
                    "exclusiveMinimum": 0,
                    "maximum": 3600,
                    "default": 30,
                },
                "wait": {"type": "boolean", "default": True},
            },
        },
        "PromptAnswer": {
            "type": "object",
            "properties": {
                "serial": text,
                "prompt_id": integer,
                "state": {"enum": ["issued", "answered"]},
                "rating": _ref("Rating"),
            },
        },
        "Prompt": {
            "type": "object",
            "properties": {
                "serial": text,
                "prompt_id": integer,
                "staff_id": text,
                "issued_at_ms": {"type": ["integer", "null"]},
                "timeout_ms": {"type": ["integer", "null"]},
                "state": {"enum": ["issued", "answered", "timed_out", "cancelled"]},
                "closed_at_ms": {"type": ["integer", "null"]},
                "rating_seq": {"type": ["integer", "null"]},
            },
        },
    }


def openapi_document(server_url: str = "http://127.0.0.1:8765") -> dict[str, Any]:
    auth: list[dict[str, list[str]]] = [{"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ratepad agent bridge",
            "version": __version__,
            "description": "Drive the rating keypads of this service window from teller or "
            "queue software: arm a prompt and get the customer's rating, log staff in and out, "
            "read stored ratings and follow events. Loopback only; every endpoint but this "
            "document needs `Authorization: Bearer <token>` (the token is printed when the "
            "agent starts and kept in `<db>.token`).",
        },
        "servers": [{"url": server_url}],
        "security": auth,
        "paths": {
            "/v1/devices": {
                "get": {
                    "summary": "configured keypads and their status",
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {
                                    "devices": {"type": "array", "items": _ref("Device")}
                                },
                            },
                            "every configured keypad",
                        ),
                        **_COMMON_ERRORS,
                    },
                }
            },
            "/v1/devices/{serial}": {
                "parameters": [_SERIAL],
                "get": {
                    "summary": "one keypad and its status",
                    "responses": {"200": _json(_ref("Device"), "the keypad"), **_COMMON_ERRORS},
                },
            },
            "/v1/devices/{serial}/prompt": {
                "parameters": [_SERIAL],
                "post": {
                    "summary": "arm the keypad for one rating (one prompt, one rating)",
                    "description": "With `wait` (default) the call blocks until the customer's "
                    "rating is stored, at most `timeout` seconds (plus 2 s grace), and returns "
                    "it; 504 `timeout` if no rating came. Without `wait` it returns 202 with the "
                    "prompt id at once; the rating then appears in /v1/ratings and /v1/events "
                    "with that `prompt_id`.",
                    "requestBody": _body(_ref("PromptRequest")),
                    "responses": {
                        "200": _json(_ref("PromptAnswer"), "the stored rating"),
                        "202": _json(_ref("PromptAnswer"), "prompt armed (wait=false)"),
                        **_COMMAND_ERRORS,
                        "504": _error(
                            "no rating in time (`timeout`), or no answer from the keypad"
                        ),
                    },
                },
            },
            "/v1/devices/{serial}/cancel": {
                "parameters": [_SERIAL],
                "post": {
                    "summary": "disarm a prompt (prompt_id 0 or none: whichever is armed)",
                    "requestBody": _body(
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {"prompt_id": {"type": "integer", "minimum": 0}},
                        }
                    ),
                    "responses": {"200": _json({"type": "object"}, "cancelled"), **_COMMAND_ERRORS},
                },
            },
            "/v1/devices/{serial}/login": {
                "parameters": [_SERIAL],
                "post": {
                    "summary": "a staff member logged in at this window",
                    "requestBody": _body(
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["staff"],
                            "properties": {
                                "staff": {"type": "string", "minLength": 1, "maxLength": 16},
                                "name": {"type": "string", "maxLength": 32},
                            },
                        },
                        required=True,
                    ),
                    "responses": {"200": _json({"type": "object"}, "logged in"), **_COMMAND_ERRORS},
                },
            },
            "/v1/devices/{serial}/logout": {
                "parameters": [_SERIAL],
                "post": {
                    "summary": "the staff member logged out",
                    "requestBody": _body(
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {"staff": {"type": "string", "maxLength": 16}},
                        }
                    ),
                    "responses": {
                        "200": _json({"type": "object"}, "logged out"),
                        **_COMMAND_ERRORS,
                    },
                },
            },
            "/v1/devices/{serial}/prompts/{prompt_id}": {
                "parameters": [
                    _SERIAL,
                    {
                        "name": "prompt_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "integer"},
                    },
                ],
                "get": {
                    "summary": "the state of a prompt (issued, answered, timed_out, cancelled)",
                    "responses": {
                        "200": _json(_ref("Prompt"), "the prompt"),
                        **_COMMON_ERRORS,
                        "400": _error("bad prompt id"),
                    },
                },
            },
            "/v1/ratings": {
                "get": {
                    "summary": "stored ratings after a cursor, oldest first",
                    "parameters": [
                        {
                            "name": "since",
                            "in": "query",
                            "description": "return ratings with an id above this (default 0)",
                            "schema": {"type": "integer", "minimum": 0},
                        },
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                        },
                        {"name": "serial", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "properties": {
                                    "ratings": {"type": "array", "items": _ref("Rating")},
                                    "next": {
                                        "type": "integer",
                                        "description": "pass as `since` for the next page",
                                    },
                                },
                            },
                            "a page of ratings",
                        ),
                        **_COMMON_ERRORS,
                        "400": _error("bad parameter"),
                    },
                }
            },
            "/v1/summary": {
                "get": {
                    "summary": "per keypad: ratings, satisfaction index, response rate",
                    "responses": {"200": _json({"type": "object"}, "summary"), **_COMMON_ERRORS},
                }
            },
            "/v1/events": {
                "get": {
                    "summary": "Server-Sent Events: rating, status, connected, lost",
                    "description": "`event: rating` carries a stored Rating and `id:` its store "
                    "id; reconnect with `Last-Event-ID` (or `?since=ID`) to get the ratings "
                    "stored meanwhile before live events. `status`, `connected` and `lost` carry "
                    "the keypad's serial and what it reported. A comment line every 15 s keeps "
                    "the stream alive.",
                    "parameters": [
                        {
                            "name": "Last-Event-ID",
                            "in": "header",
                            "schema": {"type": "integer", "minimum": 0},
                        },
                        {"name": "since", "in": "query", "schema": {"type": "integer"}},
                    ],
                    "responses": {
                        "200": {
                            "description": "an endless event stream",
                            "content": {"text/event-stream": {"schema": {"type": "string"}}},
                        },
                        **_COMMON_ERRORS,
                    },
                }
            },
            "/v1/openapi.json": {
                "get": {
                    "summary": "this document (no token needed)",
                    "security": [],
                    "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1 document")},
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(),
        },
    }
