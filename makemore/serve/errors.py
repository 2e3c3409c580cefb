"""Every error as {"error": "<one sentence>"}: bad requests, validation, bodies too big, model failures; strict JSON."""

from __future__ import annotations

import json
import logging
import re

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..output import finite
from .schemas import MAX_BODY, SampleRequest, ScoreRequest

log = logging.getLogger("makemore.serve")
BODIES = {"/api/sample": SampleRequest, "/api/score": ScoreRequest}  # which model checks which path's body
MAX_MESSAGE = 160  # characters of a validation message quoted back


class StrictJSONResponse(JSONResponse):
    """JSON without NaN or Infinity: null in their place."""

    def render(self, content) -> bytes:
        return json.dumps(finite(content), allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode()


class ApiError(HTTPException):
    """A request the server refuses or cannot serve: its status and one sentence."""


def error(status: int, message: str) -> StrictJSONResponse:
    return StrictJSONResponse({"error": message}, status_code=status)


def shorten(text: str, limit: int = MAX_MESSAGE) -> str:
    """The first line of text, cut to limit characters."""
    line = str(text).strip().splitlines()[0] if str(text).strip() else "no message"
    return line if len(line) <= limit else line[: limit - 3] + "..."


def as_keys(text: str) -> str:
    """The API's messages name command-line flags (--skip-unknown); over HTTP a request key is named as the key."""
    keys = set(SampleRequest.model_fields) | set(ScoreRequest.model_fields)

    def key(m: re.Match) -> str:
        name = m.group(1).replace("-", "_")
        return name if name in keys else m.group(0)

    return re.sub(r"(?<![\w'\"-])--([a-z][a-z-]*)", key, text)


HTTP_MESSAGES = {404: "no such page: the API is GET /api/runs, POST /api/sample, POST /api/score (see /docs)",
                 405: "method not allowed here: /api/sample and /api/score take POST, the others GET"}


async def http_error(request: Request, exc: HTTPException) -> StrictJSONResponse:
    detail = exc.detail if isinstance(exc, ApiError) else HTTP_MESSAGES.get(exc.status_code, exc.detail)
    return error(exc.status_code, shorten(detail, 400))


def field_name(loc: tuple) -> str:
    """A validation error's place as a dotted field name: body and the union members' type names left out."""
    def is_type(p) -> bool:
        return isinstance(p, str) and ("[" in p or "-" in p or p in TYPE_TAGS)

    return ".".join(str(p) for p in loc if p != "body" and not is_type(p))


TYPE_TAGS = {"str", "int", "float", "bool", "list", "none", "literal"}


def validation_message(path: str, errors: list[dict]) -> str:
    """The first problem of a request that failed validation, in one short sentence naming the field."""
    first = next((e for e in errors if not e.get("type", "").endswith("_type")), errors[0])  # not a union's other type
    field, kind = field_name(first.get("loc", ())), first.get("type", "")
    if kind == "extra_forbidden":
        known = ", ".join(BODIES[path].model_fields) if path in BODIES else "see /docs"
        text = f"unknown field {field!r}: the fields are {known}"
    elif kind == "json_invalid":
        text = "the body is not valid JSON: send one JSON object"
    elif not field:
        text = f"the body must be one JSON object ({shorten(first.get('msg', ''), 80).lower()})"
    else:
        text = f"{field}: {shorten(first.get('msg', 'invalid'), 100).lower()}"
    more = len({field_name(e.get("loc", ())) for e in errors} - {field})
    return text + (f" (and {more} more field{'s' if more > 1 else ''} wrong)" if more else "")


async def invalid(request: Request, exc: RequestValidationError) -> StrictJSONResponse:
    return error(422, validation_message(request.url.path, list(exc.errors())))


async def crashed(request: Request, exc: Exception) -> StrictJSONResponse:
    log.exception("unexpected error on %s", request.url.path)
    return error(500, f"internal error ({type(exc).__name__}); the server is still serving")


class BodyLimit:
    """ASGI middleware: a request body over limit bytes gets a 413, declared (content-length) or streamed."""

    def __init__(self, app, limit: int = MAX_BODY):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length", b"0")
        if length.isdigit() and int(length) > self.limit:
            return await too_large(self.limit)(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:  # FastAPI passes an HTTPException raised while reading the body through
                raise ApiError(413, too_large_message(self.limit))
            return message

        await self.app(scope, counted, send)


def too_large_message(limit: int) -> str:
    return f"the request body is over {limit // 1024} KiB: send fewer words"


def too_large(limit: int) -> StrictJSONResponse:
    return error(413, too_large_message(limit))


def install(app: FastAPI) -> None:
    """Every error handler and the body limit on app."""
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Exception, crashed)
    app.add_middleware(BodyLimit, limit=MAX_BODY)
