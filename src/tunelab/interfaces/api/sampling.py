"""Generation settings of one request: the config's infer section, overridden by what the request sets."""

from __future__ import annotations

from dataclasses import dataclass
from tunelab.config.schema import InferSection
from tunelab.infer.batch_generate import SamplingFields
from tunelab.infer.batch_generate import sampling_fields as settings_fields
from tunelab.infer.protocols import CausalLM
from tunelab.interfaces.api.errors import APIError
from tunelab.interfaces.api.protocol import Sampling


@dataclass(frozen=True)
class Limits:
    """How long a prompt plus its answer may be: the model's context window and the config's cutoff_len."""

    model_context: int | None
    cutoff_len: int

    @property
    def tokens(self) -> int:
        """The smaller of the two."""
        return min(self.model_context or self.cutoff_len, self.cutoff_len)

    def describe(self) -> str:
        """Where the limit comes from, for error messages."""
        if self.model_context and self.model_context < self.cutoff_len:
            return f"the model's context window, {self.model_context} tokens"
        context = f"; the model's context window is {self.model_context}" if self.model_context else ""
        return f"cutoff_len, {self.cutoff_len} tokens{context}; raise it with cutoff_len=N when starting the server"


def model_context(model: CausalLM) -> int | None:
    """The longest sequence the model's config says it handles, when it says."""
    config = getattr(model, "config", None)
    value = getattr(config, "max_position_embeddings", None)
    return value if isinstance(value, int) and value > 0 else None


def answer_length(prompt_tokens: int, asked: int | None, default: int, limits: Limits, prompt_param: str,
                  length_param: str) -> int:
    """max_new_tokens for a prompt: the request's (400 when it does not fit) or the default, shortened to fit."""
    room = limits.tokens - prompt_tokens
    if room > 0 and (asked is None or asked <= room):
        return asked if asked is not None else min(default, room)
    wanted = asked if asked is not None else default
    param = prompt_param if asked is None or room <= 0 else length_param
    raise APIError(400, f"This model's maximum context length is {limits.tokens} tokens ({limits.describe()}). "
                        f"However, you requested {prompt_tokens + wanted} tokens ({prompt_tokens} in the "
                        f"{prompt_param}, {wanted} in the completion ({length_param})). Please reduce the length "
                        f"of the {prompt_param} or of {length_param}.", param=param, code="context_length_exceeded")


def sampling_fields(body: Sampling, settings: InferSection) -> SamplingFields:
    """GenRequest sampling fields: request values over the config's; temperature 0 means greedy."""
    update: dict[str, float | int | bool] = {name: getattr(body, name) for name in ("temperature", "top_p", "top_k", "repetition_penalty")
              if getattr(body, name) is not None}
    if body.temperature is not None:
        update["do_sample"] = body.temperature > 0
    return settings_fields(settings.model_copy(update=update))


def choice_seed(seed: int | None, choice: int) -> int | None:
    """Seed of choice i of a request: n choices with one seed still differ, and each is reproducible."""
    return None if seed is None else seed + choice
