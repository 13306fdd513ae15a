"""POST /v1/chat/completions: messages through the chat template, answers with usage, SSE chunks, tool calls."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import JsonValue

from tunelab.infer.engine import ErrorEvent, TextEvent
from tunelab.text.tool_calls import StreamSplitter, ToolFormat
from tunelab.interfaces.api.errors import error_body
from tunelab.interfaces.api.messages import render, tool_format
from tunelab.interfaces.api.protocol import ChatRequest
from tunelab.interfaces.api.run import Answer, Prompt, Run, collect, events, new_id, start, usage
from tunelab.interfaces.api.sampling import answer_length, sampling_fields
from tunelab.interfaces.api.state import Server


async def chat_completion(server: Server, body: ChatRequest, request: Request) -> Response:
    """Answer a chat request, whole or as a stream."""
    route = server.route(body.model)
    body.refuse_unsupported()
    found = tool_format(server.tokenizer, body)
    ids = render(server.tokenizer, body)
    length_param = "max_completion_tokens" if body.max_completion_tokens else "max_tokens"
    length = answer_length(len(ids), body.length_limit(), server.settings.max_new_tokens, server.limits,
                           "messages", length_param)
    run = start(server.engine, server.tokenizer, [Prompt(ids, length)], body.n,
                sampling_fields(body, server.settings), body.stop_list(), server.stop_ids, body.seed, route.adapter)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        chunks = stream_chat(route.model_id, run, body.n, len(ids), found, include_usage)
        return StreamingResponse(chunks, media_type="text/event-stream")
    answers = await collect(run, request)
    choices = [choice(i, answer, found) for i, answer in enumerate(answers)]
    return JSONResponse({"id": new_id("chatcmpl"), "object": "chat.completion", "created": run.created,
                         "model": route.model_id, "system_fingerprint": None, "choices": choices,
                         "usage": usage(len(ids), sum(a.tokens for a in answers))})


def choice(index: int, answer: Answer, found: ToolFormat | None) -> dict[str, JsonValue]:
    """One choice of a whole answer; tool calls parsed out when the request has tools."""
    message: dict[str, JsonValue] = {"role": "assistant", "content": answer.text}
    reason = answer.finish_reason
    if found is not None:
        parsed = found.parse(answer.text)
        if parsed.calls:
            message = {"role": "assistant", "content": parsed.content,
                       "tool_calls": [call.to_openai() for call in parsed.calls]}
            reason = "tool_calls"
    return {"index": index, "message": message, "logprobs": None, "finish_reason": reason}


def sse(data: dict[str, JsonValue]) -> str:
    """One server-sent event line."""
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


def chunker(kind: str, chunk_id: str, created: int, model_id: str,
            include_usage: bool) -> Callable[..., str]:
    """chunk(choices, usage=None) -> one SSE event of a stream; usage (null until the last chunk) when asked."""
    def chunk(choices: list[JsonValue], usage_: dict[str, int] | None = None) -> str:
        data: dict[str, JsonValue] = {"id": chunk_id, "object": kind, "created": created, "model": model_id,
                "system_fingerprint": None, "choices": choices}
        if include_usage:
            data["usage"] = usage_
        return sse(data)
    return chunk


async def stream_chat(model_id: str, run: Run, n: int, prompt_tokens: int, found: ToolFormat | None,
                      include_usage: bool) -> AsyncIterator[str]:
    """The SSE stream: a role chunk per choice, content deltas, tool-call deltas, finish chunks, usage, [DONE]."""
    chunk = chunker("chat.completion.chunk", new_id("chatcmpl"), run.created, model_id, include_usage)

    def delta(index: int, content: dict[str, JsonValue], reason: str | None = None) -> str:
        return chunk([{"index": index, "delta": content, "logprobs": None, "finish_reason": reason}])

    splitters = [StreamSplitter(found) if found else None for _ in range(n)]
    completion_tokens = 0
    for i in range(n):
        yield delta(i, {"role": "assistant", "content": ""})
    async for event in events(run):
        i = event.choice
        if isinstance(event, ErrorEvent):
            yield sse(error_body(event.status, event.message, code=event.code))
            return
        if isinstance(event, TextEvent):
            text = splitters[i].feed(event.text) if splitters[i] else event.text
            if text:
                yield delta(i, {"content": text})
            continue
        reason, completion_tokens = event.finish_reason, completion_tokens + event.tokens
        if splitters[i]:
            parsed = splitters[i].finish()
            if parsed.content:
                yield delta(i, {"content": parsed.content})
            if parsed.calls:
                reason = "tool_calls"
                yield delta(i, {"tool_calls": [{"index": k, **call.to_openai()}
                                               for k, call in enumerate(parsed.calls)]})
        yield delta(i, {}, reason)
    if include_usage:
        yield chunk([], usage(prompt_tokens, completion_tokens))
    yield "data: [DONE]\n\n"
