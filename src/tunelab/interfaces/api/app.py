"""The FastAPI app: routes, bearer-key check, and the engine thread's start and stop with the app."""

from __future__ import annotations

import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel

from tunelab.interfaces.api.chat import chat_completion
from tunelab.interfaces.api.completions import completion
from tunelab.interfaces.api.errors import error_response, install_handlers, parse_body
from tunelab.interfaces.api.protocol import ChatRequest, CompletionRequest
from tunelab.interfaces.api.state import Server
from tunelab.runtime.version import __version__

OPEN_PATHS = ("/health", "/docs", "/openapi.json")


Handler = Callable[[Request], Awaitable[Response]]


def key_check(api_key: str | None) -> Callable[[Request, Handler], Awaitable[Response]]:
    """Middleware answering 401 unless `Authorization: Bearer <api_key>` (no check when api_key is None)."""

    async def check(request: Request, call_next: Handler) -> Response:
        if api_key is None or request.url.path in OPEN_PATHS:
            return await call_next(request)
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), api_key.encode()):
            reason = "no API key given" if not given else "incorrect API key"
            return error_response(401, f"{reason}: send the server's key as 'Authorization: Bearer KEY' (the "
                                       f"value of --api-key or API_KEY)", code="invalid_api_key")
        return await call_next(request)

    return check


def schema(kind: type[BaseModel]) -> dict[str, Any]:
    """An OpenAPI requestBody entry for a body model."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": kind.model_json_schema()}}}}


def model_card(server: Server, created: int) -> dict[str, Any]:
    """The served model as an OpenAI model object."""
    return {"id": server.model_id, "object": "model", "created": created, "owned_by": "tunelab"}


def create_app(server: Server) -> FastAPI:
    """The OpenAI-compatible app over a Server; its engine thread runs while the app does."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        server.engine.start()
        yield
        server.engine.stop()

    app = FastAPI(title="tunelab API", version=__version__, lifespan=lifespan)
    install_handlers(app)
    app.middleware("http")(key_check(server.api_key))
    created = int(time.time())

    @app.get("/health")
    async def health() -> dict[str, Any]:
        engine = server.engine
        return {"status": "ok", "model": server.model_id, "waiting": engine.waiting(), "batches": engine.batches,
                "largest_batch": engine.largest_batch, "max_batch": engine.max_batch}

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [model_card(server, created)]}

    @app.get("/v1/models/{model:path}")
    async def model(model: str) -> dict[str, Any]:
        server.check_model(model)
        return model_card(server, created)

    # bodies are parsed by parse_body, not FastAPI, so that any Content-Type works; the schemas still show in /docs
    @app.post("/v1/chat/completions", openapi_extra=schema(ChatRequest))
    async def chat(request: Request) -> Response:
        return await chat_completion(server, parse_body(await request.body(), ChatRequest), request)

    @app.post("/v1/completions", openapi_extra=schema(CompletionRequest))
    async def completions(request: Request) -> Response:
        return await completion(server, parse_body(await request.body(), CompletionRequest), request)

    return app
