"""POST /v1/completions: raw prompts continued without the chat template."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from tunelab.infer.engine import ErrorEvent, TextEvent
from tunelab.interfaces.api.chat import chunker, sse
from tunelab.interfaces.api.errors import APIError, error_body
from tunelab.interfaces.api.protocol import CompletionRequest
from tunelab.interfaces.api.run import Prompt, Run, collect, events, new_id, start, usage
from tunelab.interfaces.api.sampling import answer_length, sampling_fields
from tunelab.interfaces.api.state import Server


def prompts_of(server: Server, body: CompletionRequest) -> list[Prompt]:
    """Each prompt tokenized as the tokenizer does by default (its BOS included), with its answer length."""
    prompts = []
    for i, text in enumerate(body.prompts()):
        ids = list(server.tokenizer(text)["input_ids"])
        if not ids:
            raise APIError(400, f"prompt[{i}] is empty; give some text to continue", param="prompt",
                           code="invalid_value")
        length = answer_length(len(ids), body.max_tokens, server.settings.max_new_tokens, server.limits, "prompt",
                               "max_tokens")
        prompts.append(Prompt(ids, length))
    return prompts


async def completion(server: Server, body: CompletionRequest, request: Request) -> Response:
    """Continue the prompt(s): n choices each, whole or as a stream."""
    route = server.route(body.model)
    body.refuse_unsupported()
    prompts = prompts_of(server, body)
    run = start(server.engine, server.tokenizer, prompts, body.n, sampling_fields(body, server.settings),
                body.stop_list(), server.stop_ids, body.seed, route.adapter)
    prompt_tokens = sum(len(p.ids) for p in prompts)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(stream_completion(route.model_id, run, prompt_tokens, include_usage),
                                 media_type="text/event-stream")
    answers = await collect(run, request)
    choices = [{"index": i, "text": a.text, "logprobs": None, "finish_reason": a.finish_reason}
               for i, a in enumerate(answers)]
    return JSONResponse({"id": new_id("cmpl"), "object": "text_completion", "created": run.created,
                         "model": route.model_id, "system_fingerprint": None, "choices": choices,
                         "usage": usage(prompt_tokens, sum(a.tokens for a in answers))})


async def stream_completion(model_id: str, run: Run, prompt_tokens: int, include_usage: bool) -> AsyncIterator[str]:
    """The SSE stream of text deltas, a finish chunk per choice, usage when asked, then [DONE]."""
    chunk = chunker("text_completion", new_id("cmpl"), run.created, model_id, include_usage)

    completion_tokens = 0
    async for event in events(run):
        if isinstance(event, ErrorEvent):
            yield sse(error_body(event.status, event.message, code=event.code))
            return
        if isinstance(event, TextEvent):
            yield chunk([{"index": event.choice, "text": event.text, "logprobs": None, "finish_reason": None}])
            continue
        completion_tokens += event.tokens
        yield chunk([{"index": event.choice, "text": "", "logprobs": None, "finish_reason": event.finish_reason}])
    if include_usage:
        yield chunk([], usage(prompt_tokens, completion_tokens))
    yield "data: [DONE]\n\n"
