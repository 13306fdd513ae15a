"""One OpenAI-compatible endpoint, through the official async client: retries with backoff (Retry-After honoured)
on 429, 5xx, timeouts, dropped connections and malformed replies; rate limits; usage, cost and budget."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from tunelab.remote.errors import RemoteError
from tunelab.runtime import env

Message = dict[str, str]  # {"role": ..., "content": ...}
RETRY_STATUS = frozenset({408, 409, 429})  # and every 5xx
LOCAL_KEY = "EMPTY"  # what local servers (tunelab api, vLLM) accept when they require no key


@dataclass(frozen=True)
class Price:
    """Cost per million tokens, in the user's currency."""

    input: float = 0.0
    output: float = 0.0


@dataclass(frozen=True)
class EndpointSettings:
    """Where to send requests and how hard to push: `where` names the config keys in messages."""

    base_url: str
    model: str
    api_key_env: str | None = None  # the NAME of the environment variable holding the key, never the key
    where: str = "endpoint"
    concurrency: int = 8
    requests_per_minute: float | None = None
    tokens_per_minute: float | None = None
    timeout: float = 60.0
    max_retries: int = 5
    backoff: float = 1.0  # first retry delay in seconds; doubles each retry, with jitter, capped at max_backoff
    max_backoff: float = 60.0
    price: Price = field(default_factory=Price)
    max_tokens_total: int | None = None
    max_cost: float | None = None


@dataclass
class Usage:
    """What the requests of a run have used so far."""

    requests: int = 0
    retries: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    def cost(self, price: Price) -> float:
        """The cost of the tokens used at the given price."""
        return (self.prompt_tokens * price.input + self.completion_tokens * price.output) / 1e6

    def to_dict(self, price: Price) -> dict[str, float | int]:
        """JSON-ready figures for reports."""
        return {"requests": self.requests, "retries": self.retries, "failures": self.failures,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "cost": round(self.cost(price), 6)}


@dataclass(frozen=True)
class Reply:
    """One answer: its text, why it ended, the tokens it cost and how many attempts it took."""

    text: str
    finish_reason: str | None
    prompt_tokens: int
    completion_tokens: int
    attempts: int


class Retry(Exception):
    """A failure worth asking again, with the server's Retry-After when it gave one."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def api_key(settings: EndpointSettings) -> str:
    """The key from the environment variable the config names; local endpoints need none."""
    if not settings.api_key_env:
        return LOCAL_KEY
    key = env.secret(settings.api_key_env)
    if key is None:
        raise RemoteError(f"{settings.where}: the environment variable {settings.api_key_env} (named by the config "
                          f"as the API key's variable) is not set; export {settings.api_key_env}=<your key> first")
    return key


def retry_after(headers: object) -> float | None:
    """Seconds from a Retry-After header (seconds form), None when absent or unreadable."""
    value = getattr(headers, "get", lambda _name: None)("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def delay(settings: EndpointSettings, attempt: int, server_wait: float | None) -> float:
    """How long to wait before attempt+1: the server's Retry-After, else exponential backoff with jitter."""
    if server_wait is not None:
        return min(server_wait, settings.max_backoff)
    return min(settings.max_backoff, settings.backoff * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


def estimate_tokens(messages: list[Message], max_tokens: int | None) -> int:
    """A rough token count of a request for the tokens-per-minute limit (about 3 characters a token)."""
    return sum(len(m.get("content") or "") for m in messages) // 3 + (max_tokens or 256)
