"""The score route of a reward-model server: LLaMA-Factory's `POST /v1/score/evaluation` (also served by
`tunelab api` on a reward model). Full texts in, one score each out: {"model": ..., "messages": [texts]} ->
{"scores": [...]}. Retried as chat requests are (remote/endpoint.py): 408/409/429/5xx with Retry-After honoured,
timeouts, dropped connections and malformed replies; other statuses fail at once, naming the fix."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from tunelab.remote.endpoint import RETRY_STATUS, EndpointSettings, Retry, Usage, api_key, delay, retry_after
from tunelab.remote.errors import RemoteError

SCORE_ROUTE = "/v1/score/evaluation"
STATUS_FIXES = {
    401: "check the API key in the environment variable reward_api_key_env names",
    403: "the key may not use this server",
    404: f"check the URL: the server must answer POST {SCORE_ROUTE} (a reward model served by `tunelab api`)",
    400: "the server refused the texts; check that it serves a reward model",
}


def score_url(url: str) -> str:
    """The score route of a server URL: kept when it already names a route, else /v1/score/evaluation appended
    (to the host, or to a path ending in /v1)."""
    path = urlsplit(url).path.rstrip("/")
    if path.endswith("/score/evaluation"):
        return url
    if path.endswith("/v1"):
        return url.rstrip("/") + "/score/evaluation"
    return url.rstrip("/") + SCORE_ROUTE


class ScoreClient:
    """A blocking client of one score route; `settings.base_url` is the server or route URL."""

    def __init__(self, settings: EndpointSettings) -> None:
        import httpx

        self.settings = settings
        self.url = score_url(settings.base_url)
        self.usage = Usage()
        self.headers = {"Authorization": f"Bearer {api_key(settings)}"}
        self.client = httpx.Client(timeout=settings.timeout)

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()

    def score(self, texts: list[str]) -> list[float]:
        """One score per text, in order; RemoteError once the retries are spent or on a refusal."""
        s = self.settings
        for attempt in range(1, s.max_retries + 2):
            self.usage.requests += 1
            try:
                return self.once(texts)
            except Retry as why:
                if attempt > s.max_retries:
                    self.usage.failures += 1
                    raise RemoteError(f"{s.where}: {self.url} failed {attempt} times; last: {why}") from None
                self.usage.retries += 1
                time.sleep(delay(s, attempt, why.retry_after))
        raise AssertionError("unreachable: the loop returns or raises")

    def once(self, texts: list[str]) -> list[float]:
        """One attempt; Retry for what is worth asking again, RemoteError for what is not."""
        import httpx

        try:
            response = self.client.post(self.url, json={"model": self.settings.model, "messages": texts},
                                        headers=self.headers)
        except httpx.TimeoutException:
            raise Retry(f"no answer within {self.settings.timeout:g} s") from None
        except httpx.TransportError as exc:
            raise Retry(f"connection failed ({exc})") from None
        status = response.status_code
        if status in RETRY_STATUS or status >= 500:
            raise Retry(f"HTTP {status}", retry_after(response.headers))
        if status >= 400:
            self.usage.failures += 1
            fix = STATUS_FIXES.get(status, "check the reward_model URL")
            raise RemoteError(f"{self.settings.where}: {self.url} answered HTTP {status} ({response.text[:300]}); "
                              f"{fix}")
        return self.read(response.content, len(texts))

    def read(self, body: bytes, expected: int) -> list[float]:
        """The scores of a reply; a reply that is not JSON with a list of numbers is malformed (Retry)."""
        import json

        try:
            scores = json.loads(body)["scores"]
            values = [float(score) for score in scores]
        except (ValueError, KeyError, TypeError):
            raise Retry("malformed reply (no list of numbers under 'scores')") from None
        if len(values) != expected:
            self.usage.failures += 1
            raise RemoteError(f"{self.settings.where}: {self.url} returned {len(values)} scores for {expected} "
                              "texts; the server must answer one score per message")
        return values
