"""The FastAPI apps: a chat model's routes (with the engine thread's start and stop) or a reward model's, and the
bearer-key check both use."""

from __future__ import annotations

import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, JsonValue

from tunelab.interfaces.api.chat import chat_completion
from tunelab.interfaces.api.completions import completion
from tunelab.interfaces.api.errors import APIError, error_response, install_handlers, parse_body
from tunelab.interfaces.api.metrics import CONTENT_TYPE, RequestCounter, exposition
from tunelab.interfaces.api.models import model_card
from tunelab.interfaces.api.protocol import ChatRequest, CompletionRequest, ScoreRequest
from tunelab.interfaces.api.score import (GENERATION_ROUTES, SCORE_ROUTE, ScoreServer, not_a_chat_model,
                                          not_a_reward_model, score_evaluation)
from tunelab.interfaces.api.state import Server
from tunelab.runtime.version import __version__

OPEN_PATHS = ("/health", "/metrics", "/docs", "/openapi.json")


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


def schema(kind: type[BaseModel]) -> dict[str, JsonValue]:
    """An OpenAPI requestBody entry for a body model."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": kind.model_json_schema()}}}}


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
    requests = RequestCounter()
    app.middleware("http")(requests)  # added last, so it runs first: 401s are counted too
    created = int(time.time())

    @app.get("/health")
    async def health() -> dict[str, str | int | float | None]:
        engine = server.engine
        return {"status": "ok", "model": server.model_id, "queue_depth": engine.waiting(),
                "active_rows": engine.active(), "max_batch": engine.max_batch, "max_queue": engine.max_queue,
                "request_timeout_s": engine.request_timeout, "waiting": engine.waiting(), "batches": engine.batches,
                "largest_batch": engine.largest_batch}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(exposition(server.engine, requests), media_type=CONTENT_TYPE)

    @app.get("/v1/models")
    async def models() -> dict[str, str | list[dict[str, str | int]]]:
        return {"object": "list", "data": server.served().cards(created)}

    @app.get("/v1/models/{model:path}")
    async def model(model: str) -> dict[str, str | int]:
        return model_card(server.route(model).model_id, created)

    # bodies are parsed by parse_body, not FastAPI, so that any Content-Type works; the schemas still show in /docs
    @app.post("/v1/chat/completions", openapi_extra=schema(ChatRequest))
    async def chat(request: Request) -> Response:
        return await chat_completion(server, parse_body(await request.body(), ChatRequest), request)

    @app.post("/v1/completions", openapi_extra=schema(CompletionRequest))
    async def completions(request: Request) -> Response:
        return await completion(server, parse_body(await request.body(), CompletionRequest), request)

    @app.post(SCORE_ROUTE)
    async def score(request: Request) -> Response:
        raise not_a_reward_model(server.model_id)

    return app


def create_score_app(server: ScoreServer) -> FastAPI:
    """The app over a reward model: the score route, /health, /v1/models, and 405 on the generation routes."""
    app = FastAPI(title="tunelab API (reward model)", version=__version__)
    install_handlers(app)
    app.middleware("http")(key_check(server.api_key))
    created = int(time.time())

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "model": server.model_id, "kind": "reward"}

    @app.get("/v1/models")
    async def models() -> dict[str, str | list[dict[str, str | int]]]:
        return {"object": "list", "data": [model_card(server.model_id, created)]}

    @app.get("/v1/models/{model:path}")
    async def model(model: str) -> dict[str, str | int]:
        if model != server.model_id:
            raise APIError(404, f"The model '{model}' does not exist: this server serves '{server.model_id}'",
                           param="model", code="model_not_found")
        return model_card(server.model_id, created)

    @app.post(SCORE_ROUTE, openapi_extra=schema(ScoreRequest))
    async def score(request: Request) -> Response:
        return await score_evaluation(server, parse_body(await request.body(), ScoreRequest))

    for route in GENERATION_ROUTES:
        @app.post(route)
        async def generation(request: Request) -> Response:
            raise not_a_chat_model(server.model_id, request.url.path)

    return app

