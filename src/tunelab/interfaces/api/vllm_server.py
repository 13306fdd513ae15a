"""`tunelab api` with infer_backend: vllm: the same routes and answers, decoded by vLLM."""

from __future__ import annotations

from collections.abc import Sequence

from tunelab.config.backend_checks import backend_check
from tunelab.config.errors import ConfigError
from tunelab.config.schema import RunConfig
from tunelab.infer.backends.vllm_stepper import VllmStepper
from tunelab.infer.engine import Engine
from tunelab.infer.backends.vllm_load import load_vllm
from tunelab.interfaces.api.models import ModelRoutes
from tunelab.interfaces.api.sampling import Limits
from tunelab.interfaces.api.state import Server
from tunelab.model.adapter_set import NamedAdapter


def vllm_server(config: RunConfig, max_batch: int, api_key: str | None, adapters: Sequence[NamedAdapter],
                routes: ModelRoutes | None, max_queue: int | None = None,
                request_timeout: float | None = None) -> Server:
    """Check the machine can run vLLM (a ConfigError saying what is missing), start it, and wrap it in a Server."""
    problems = backend_check(config.backend)
    if problems:
        raise ConfigError(problems)
    bundle = load_vllm(config, adapters)
    engine = Engine(None, 0, max_batch, max_queue=max_queue, request_timeout=request_timeout,
                    batch=VllmStepper(bundle.backend))
    return Server(tokenizer=bundle.tokenizer, engine=engine, settings=config.infer,
                  model_id=config.model.model_name_or_path, limits=Limits(bundle.max_len, config.data.cutoff_len),
                  stop_ids=bundle.stop_ids, api_key=api_key, routes=routes)
