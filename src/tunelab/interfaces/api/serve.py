"""`tunelab api`: load the model once and serve it with uvicorn."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tunelab.config.schema import RunConfig
from tunelab.model.adapter_set import NamedAdapter, check_names
from tunelab.runtime.env import api_env

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_MAX_BATCH = 8
DEFAULT_MAX_QUEUE = 64
DEFAULT_REQUEST_TIMEOUT = 600.0


class ServeError(Exception):
    """A server setting that cannot work (the message says which and how to fix it)."""


@dataclass(frozen=True)
class Address:
    """Where to listen and the key clients must send."""

    host: str
    port: int
    api_key: str | None


def address(host: str | None, port: int | None, api_key: str | None) -> Address:
    """Flags first, then LLaMA-Factory's API_HOST / API_PORT / API_KEY, then 127.0.0.1:8000 without a key."""
    env = api_env()
    raw_port = port if port is not None else env.get("port", DEFAULT_PORT)
    try:
        number = int(raw_port)
    except ValueError:
        raise ServeError(f"API_PORT={raw_port!r} is not a port number; set it to e.g. 8000 or pass --port") from None
    if not 0 < number < 65536:
        raise ServeError(f"port {number} is out of range; use 1-65535 (--port or API_PORT)")
    return Address(host=host or env.get("host") or DEFAULT_HOST, port=number,
                   api_key=api_key or env.get("key") or None)


def batch_size(flag: int | None, config: RunConfig) -> int:
    """--max-batch, else the config's per_device_eval_batch_size, at least 8 (a server has many clients)."""
    if flag is not None:
        if flag < 1:
            raise ServeError(f"--max-batch {flag}: use 1 or more")
        return flag
    return max(DEFAULT_MAX_BATCH, config.eval.per_device_eval_batch_size)


@dataclass(frozen=True)
class Capacity:
    """How much the server takes on: running rows, requests waiting for a slot, seconds a request may take."""

    max_batch: int
    max_queue: int
    request_timeout: float | None


def capacity(max_batch: int, max_queue: int | None, request_timeout: float | None) -> Capacity:
    """--max-queue (default 64) and --request-timeout (default 600 s; 0: no limit) checked."""
    queue = DEFAULT_MAX_QUEUE if max_queue is None else max_queue
    if queue < 1:
        raise ServeError(f"--max-queue {queue}: use 1 or more (requests beyond it are answered 429 at once)")
    timeout = DEFAULT_REQUEST_TIMEOUT if request_timeout is None else request_timeout
    if timeout < 0:
        raise ServeError(f"--request-timeout {timeout:g}: use seconds > 0, or 0 for no limit")
    return Capacity(max_batch, queue, timeout or None)


def check_adapters_flag(config: RunConfig, adapters: Sequence[NamedAdapter]) -> None:
    """--adapters names every adapter served: not with the config's adapter_name_or_path, nor a reward model;
    vLLM serves chat models only."""
    if config.backend.infer_backend == "vllm" and config.method.stage == "rm":
        raise ServeError("infer_backend: vllm serves chat models; a reward model (stage: rm) is served by the "
                         "huggingface backend: set infer_backend: huggingface")
    if not adapters:
        return
    if config.model.adapter_name_or_path:
        raise ServeError(f"adapter_name_or_path ({config.model.adapter_name_or_path}) and --adapters both name "
                         "adapters; give each one in --adapters as name=path and remove adapter_name_or_path")
    if config.method.stage == "rm":
        raise ServeError("--adapters serves chat models; a reward model (stage: rm) is served alone, without it")
    check_names(list(adapters), config.model.model_name_or_path)


def serve(config: RunConfig, where: Address, limits: Capacity, adapters: Sequence[NamedAdapter] = ()) -> None:
    """Load the model (with the run's adapter when there is one, or the named adapters) and serve until interrupted:
    a reward model (stage rm, or a folder with a value head) answers the score route, any other model the chat
    routes."""
    import uvicorn

    from tunelab.infer.load import load_for_inference
    from tunelab.infer.reward import is_reward_model, load_scorer
    from tunelab.interfaces.api.app import create_app, create_score_app
    from tunelab.interfaces.api.models import several_adapters
    from tunelab.interfaces.api.score import SCORE_ROUTE, ScoreServer
    from tunelab.interfaces.api.state import build_server
    from tunelab.runtime.logging import info

    model_id = config.model.model_name_or_path
    key = ", API key required" if where.api_key else ""
    if not adapters and is_reward_model(config):
        scorer = load_scorer(config)
        info(f"serving the reward model {model_id} at http://{where.host}:{where.port}{SCORE_ROUTE} (batches of up "
             f"to {limits.max_batch}{key})")
        uvicorn.run(create_score_app(ScoreServer(scorer, model_id, limits.max_batch, where.api_key)), host=where.host,
                    port=where.port, log_level="info")
        return
    routes = several_adapters(model_id, [a.name for a in adapters]) if adapters else None
    if config.backend.infer_backend == "vllm":
        from tunelab.interfaces.api.vllm_server import vllm_server

        server = vllm_server(config, limits.max_batch, where.api_key, adapters, routes, limits.max_queue,
                             limits.request_timeout)
    else:
        bundle = load_for_inference(config, named=adapters)
        server = build_server(bundle.tokenizer, bundle.model, config.infer, model_id, config.data.cutoff_len,
                              limits.max_batch, where.api_key, max_queue=limits.max_queue,
                              request_timeout=limits.request_timeout, routes=routes)
    timeout = f"{limits.request_timeout:g} s" if limits.request_timeout else "none"
    served = ", ".join(server.served().ids())
    info(f"serving {served} at http://{where.host}:{where.port}/v1 (up to {limits.max_batch} rows decoding, "
         f"{limits.max_queue} waiting, request timeout {timeout}{key})")
    uvicorn.run(create_app(server), host=where.host, port=where.port, log_level="info")
