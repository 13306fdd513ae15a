"""What the routes share: the tokenizer, the engine, the defaults and limits, the served model id, the key."""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.config.schema import InferSection
from tunelab.infer.batch_generate import stop_token_ids
from tunelab.infer.engine import Engine, GenerateFn
from tunelab.infer.protocols import CausalLM, Tokenizer
from tunelab.interfaces.api.models import ModelRoutes, Route, single_model
from tunelab.interfaces.api.sampling import Limits, model_context


@dataclass
class Server:
    """The served model and how requests to it are answered."""

    tokenizer: Tokenizer
    engine: Engine
    settings: InferSection
    model_id: str
    limits: Limits
    stop_ids: frozenset[int]
    api_key: str | None = None
    routes: ModelRoutes | None = None  # None: model_id alone, the model as loaded

    def served(self) -> ModelRoutes:
        """The ids this server answers to and the adapter each picks."""
        return self.routes or single_model(self.model_id)

    def route(self, name: str | None) -> Route:
        """The id and adapter a request's `model` picks; 404 model_not_found for an id not served."""
        return self.served().route(name)


def build_server(tokenizer: Tokenizer, model: CausalLM, settings: InferSection, model_id: str, cutoff_len: int,
                 max_batch: int, api_key: str | None = None, generate_fn: GenerateFn | None = None,
                 max_queue: int | None = None, request_timeout: float | None = None,
                 routes: ModelRoutes | None = None) -> Server:
    """A Server around a loaded tokenizer and model (the engine thread starts with the app); at most max_queue
    requests wait for a slot, and none runs longer than request_timeout seconds (None: no limit)."""
    stops = stop_token_ids(tokenizer, model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(stops, default=0)
    model.eval()
    engine = Engine(model, pad_id, max_batch, generate_fn, max_queue=max_queue, request_timeout=request_timeout)
    return Server(tokenizer=tokenizer, engine=engine, settings=settings, model_id=model_id,
                  limits=Limits(model_context(model), cutoff_len), stop_ids=stops, api_key=api_key,
                  routes=routes)
