"""OpenAI-shaped errors: every failure answers `{"error": {"message", "type", "param", "code"}}`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

T = TypeVar("T", bound=BaseModel)
TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "invalid_request_error",
         405: "invalid_request_error", 413: "invalid_request_error", 500: "server_error", 503: "server_error"}


class APIError(Exception):
    """A request that cannot be answered: HTTP status, message, and OpenAI's param and code."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code


def error_body(status: int, message: str, param: str | None = None,
               code: str | None = None) -> dict[str, dict[str, str | None]]:
    """The JSON body OpenAI clients parse into their error classes."""
    return {"error": {"message": message, "type": TYPES.get(status, "invalid_request_error"), "param": param,
                      "code": code}}


def error_response(status: int, message: str, param: str | None = None, code: str | None = None) -> JSONResponse:
    """An error body with its status."""
    return JSONResponse(error_body(status, message, param, code), status_code=status)


def field_name(loc: Iterable[object]) -> str:
    """A pydantic location as a dotted field name, without FastAPI's leading 'body'."""
    parts = [str(part) for part in loc if part != "body"]
    name = ""
    for part in parts:
        name += f"[{part}]" if part.isdigit() else (f".{part}" if name else part)
    return name


def validation_message(errors: Sequence[Mapping[str, object]]) -> tuple[str, str | None]:
    """The first validation problem as (message, param), with a count of the others."""
    first = errors[0] if errors else {"msg": "invalid request", "loc": ()}
    loc = first.get("loc", ())
    name = field_name(loc if isinstance(loc, tuple) else ())
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    if not name:
        return f"the request body must be a JSON object: {first.get('msg')}{more}", None
    return f"'{name}': {first.get('msg')}{more}", name


def parse_body(raw: bytes, kind: type[T]) -> T:
    """The request body as kind: 400 for malformed JSON and for each kind of invalid field.

    Parsed whatever the Content-Type says: `curl -d '{...}'` sends form encoding, and OpenAI accepts it.
    """
    try:
        data = json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise APIError(400, f"the request body is not valid JSON ({exc}); send a JSON object",
                       code="invalid_json") from None
    if not isinstance(data, dict):
        raise APIError(400, f"the request body must be a JSON object, not {type(data).__name__}",
                       code="invalid_json")
    try:
        return kind.model_validate(data)
    except ValidationError as exc:
        message, param = validation_message(exc.errors())
        raise APIError(400, message, param, "invalid_value") from None


def install_handlers(app: FastAPI) -> None:
    """Turn APIError, validation errors and HTTP errors (404 routes, 405 methods) into OpenAI error bodies."""

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.param, exc.code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = validation_message(list(exc.errors()))
        return error_response(400, message, param, "invalid_value")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = f"{request.method} {request.url.path}: {exc.detail}"
        if exc.status_code == 404:
            message += "; the API serves /v1/models, /v1/chat/completions, /v1/completions and /health"
        return error_response(exc.status_code, message, None, None)
