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

from tunelab.runtime import strict_json
from tunelab.runtime.strict_json import DuplicateKey

T = TypeVar("T", bound=BaseModel)
TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "invalid_request_error",
         405: "invalid_request_error", 413: "invalid_request_error", 429: "requests", 500: "server_error",
         503: "server_error", 504: "server_error"}


class APIError(Exception):
    """A request that cannot be answered: HTTP status, message, and OpenAI's param and code."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}


def error_body(status: int, message: str, param: str | None = None,
               code: str | None = None) -> dict[str, dict[str, str | None]]:
    """The JSON body OpenAI clients parse into their error classes."""
    return {"error": {"message": message, "type": TYPES.get(status, "invalid_request_error"), "param": param,
                      "code": code}}


def error_response(status: int, message: str, param: str | None = None, code: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """An error body with its status (and headers such as Retry-After)."""
    return JSONResponse(error_body(status, message, param, code), status_code=status, headers=headers)


def field_name(loc: Iterable[object]) -> str:
    """A pydantic location as a dotted field name, without FastAPI's leading 'body'."""
    parts = [str(part) for part in loc if part != "body"]
    name = ""
    for part in parts:
        name += f"[{part}]" if part.isdigit() else (f".{part}" if name else part)
    return name


def request_path(loc: Sequence[object], data: object, missing: bool) -> list[str | int]:
    """The parts of a pydantic location that name the request's own fields: those that index into the request
    as sent (pydantic adds the union member it tried, such as 'str' or 'list[TextPart]'), plus the missing field."""
    path: list[str | int] = []
    node = data
    parts = [part for part in loc if part != "body"]
    for index, part in enumerate(parts):
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif missing and index == len(parts) - 1 and isinstance(part, str):
            node = None
        else:
            continue
        path.append(part)
    return path


def validation_message(errors: Sequence[Mapping[str, object]], data: object = None) -> tuple[str, str | None]:
    """The deepest validation problem in the request's own field names, as (message, param); the alternatives a
    field could have been (a string, or a list of parts) are joined, and a count of other fields added."""
    if not errors:
        return "the request body must be a JSON object: invalid request", None
    paths = []
    for error in errors:
        loc = error.get("loc", ())
        paths.append(request_path(loc if isinstance(loc, tuple) else (), data, error.get("type") == "missing")
                     if data is not None else [part for part in (loc if isinstance(loc, tuple) else ())
                                               if part != "body"])
    deepest = max(paths, key=len)
    name = field_name(deepest)
    here = [error for error, path in zip(errors, paths) if path == deepest]
    messages = list(dict.fromkeys(str(error.get("msg")) for error in here))
    others = len({field_name(path) for path in paths} - {name})
    more = f" (and {others} more problem{'s' if others > 1 else ''})" if others else ""
    if not name:
        return f"the request body must be a JSON object: {messages[0]}{more}", None
    return f"'{name}': {' or '.join(messages)}{more}", name


def parse_body(raw: bytes, kind: type[T]) -> T:
    """The request body as kind: 400 for malformed JSON and for each kind of invalid field.

    Parsed whatever the Content-Type says: `curl -d '{...}'` sends form encoding, and OpenAI accepts it.
    """
    try:
        data = strict_json.loads(raw or b"null")
    except DuplicateKey as exc:
        raise APIError(400, f"'{exc.field}': the key appears twice in one object of the request body (JSON keeps "
                            "only the last); send it once", exc.field, "invalid_json") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise APIError(400, f"the request body is not valid JSON ({exc}); send a JSON object",
                       code="invalid_json") from None
    if not isinstance(data, dict):
        raise APIError(400, f"the request body must be a JSON object, not {type(data).__name__}",
                       code="invalid_json")
    try:
        return kind.model_validate(data)
    except ValidationError as exc:
        message, param = validation_message(exc.errors(), data)
        raise APIError(400, message, param, "invalid_value") from None


def install_handlers(app: FastAPI) -> None:
    """Turn APIError, validation errors and HTTP errors (404 routes, 405 methods) into OpenAI error bodies."""

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.param, exc.code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = validation_message(list(exc.errors()), exc.body)
        return error_response(400, message, param, "invalid_value")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = f"{request.method} {request.url.path}: {exc.detail}"
        if exc.status_code == 404:
            message += ("; the API serves /v1/models, /v1/chat/completions, /v1/completions, /v1/score/evaluation "
                        "(reward models) and /health")
        return error_response(exc.status_code, message, None, None)
