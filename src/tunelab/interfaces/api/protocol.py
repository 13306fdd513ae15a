"""Request bodies of the OpenAI endpoints (the fields tunelab honours, and those it refuses when set)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from tunelab.interfaces.api.errors import APIError


class Body(BaseModel):
    """Fields clients add that tunelab does not know are ignored (clients send new OpenAI fields early)."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())


class TextPart(Body):
    type: Literal["text"] = "text"
    text: str


class FunctionCall(Body):
    name: str
    arguments: str | dict[str, JsonValue] = "{}"


class ToolCallIn(Body):
    id: str | None = None
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(Body):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None


class FunctionSpec(Body):
    name: str
    description: str | None = None
    parameters: dict[str, JsonValue] | None = None


class Tool(Body):
    type: Literal["function"] = "function"
    function: FunctionSpec


class StreamOptions(Body):
    include_usage: bool = False


class Sampling(Body):
    """What both endpoints share: the model, sampling, length, stop, choices and streaming."""

    model: str | None = None
    temperature: float | None = Field(None, ge=0.0, le=2.0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(1, ge=1, le=16)
    stream: bool = False
    stream_options: StreamOptions | None = None
    # not in OpenAI's API, but vLLM and LLaMA-Factory accept them and the engine supports them
    top_k: int | None = Field(None, ge=0)
    repetition_penalty: float | None = Field(None, gt=0.0)
    # accepted only at their neutral values: the engine cannot honour anything else
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: dict[str, float] | None = None
    logprobs: bool | int | None = None
    user: str | None = None

    def stop_list(self) -> list[str]:
        """Stop strings as a list without empty ones."""
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return [s for s in stops if s]

    def refuse_unsupported(self) -> None:
        """400 unsupported_parameter for a parameter set to something the engine cannot do."""
        for name in ("presence_penalty", "frequency_penalty"):
            if getattr(self, name):
                raise unsupported(name, f"{name} is not supported by tunelab's engine; leave it out or set 0 "
                                        f"(repetition_penalty is supported)")
        if self.logit_bias:
            raise unsupported("logit_bias", "logit_bias is not supported; leave it out")
        if self.logprobs:
            raise unsupported("logprobs", "logprobs are not supported; leave them out")


class ChatRequest(Sampling):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, JsonValue] | None = None
    parallel_tool_calls: bool | None = None
    top_logprobs: int | None = None
    response_format: dict[str, JsonValue] | None = None

    def length_limit(self) -> int | None:
        """max_completion_tokens (the new name) or max_tokens."""
        return self.max_completion_tokens or self.max_tokens

    def use_tools(self) -> bool:
        """True when tools are given and tool_choice does not switch them off."""
        return bool(self.tools) and self.tool_choice != "none"

    def refuse_unsupported(self) -> None:
        """Sampling's checks plus the chat-only ones."""
        super().refuse_unsupported()
        if self.top_logprobs:
            raise unsupported("top_logprobs", "logprobs are not supported; leave top_logprobs out")
        if self.response_format and self.response_format.get("type", "text") != "text":
            raise unsupported("response_format", "only response_format {'type': 'text'} is supported; "
                                                 "ask for JSON in the prompt instead")
        if self.tools and self.tool_choice not in (None, "none", "auto"):
            raise unsupported("tool_choice", "tool_choice must be 'auto' or 'none': tunelab cannot force a call")


class CompletionRequest(Sampling):
    prompt: str | list[str] = Field(min_length=1)
    echo: bool = False
    suffix: str | None = None
    best_of: int | None = None

    def prompts(self) -> list[str]:
        """The prompt(s) as a list."""
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)

    def refuse_unsupported(self) -> None:
        """Sampling's checks plus the completion-only ones."""
        super().refuse_unsupported()
        if self.echo:
            raise unsupported("echo", "echo is not supported; leave it out")
        if self.suffix:
            raise unsupported("suffix", "suffix (insertion) is not supported; leave it out")
        if self.best_of not in (None, 1, self.n):
            raise unsupported("best_of", "best_of is not supported; use n")


def unsupported(param: str, message: str) -> APIError:
    """A 400 unsupported_parameter error naming param."""
    return APIError(400, message, param=param, code="unsupported_parameter")


class ScoreRequest(Body):
    """LLaMA-Factory's ScoreEvaluationRequest: texts already rendered with the chat template, to score with a
    reward model. The model name is echoed back, not checked (LLaMA-Factory's own PPO client sends 'model')."""

    model: str | None = None
    messages: list[str]
    max_length: int | None = Field(None, ge=1)
