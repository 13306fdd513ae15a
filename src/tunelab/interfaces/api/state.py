"""What the routes share: the tokenizer, the engine, the defaults and limits, the served model id, the key."""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.config.schema import InferSection
from tunelab.infer.batch_generate import stop_token_ids
from tunelab.infer.engine import Engine, GenerateFn
from tunelab.infer.protocols import CausalLM, Tokenizer
from tunelab.interfaces.api.errors import APIError
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

    def check_model(self, name: str | None) -> None:
        """404 model_not_found unless name is the served model (or left out)."""
        if name is not None and name != self.model_id:
            raise APIError(404, f"The model '{name}' does not exist: this server serves '{self.model_id}' "
                                f"(GET /v1/models lists it)", param="model", code="model_not_found")


def build_server(tokenizer: Tokenizer, model: CausalLM, settings: InferSection, model_id: str, cutoff_len: int,
                 max_batch: int, api_key: str | None = None, generate_fn: GenerateFn | None = None) -> Server:
    """A Server around a loaded tokenizer and model (the engine thread starts with the app)."""
    stops = stop_token_ids(tokenizer, model)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(stops, default=0)
    model.eval()
    engine = Engine(model, pad_id, max_batch, generate_fn)
    return Server(tokenizer=tokenizer, engine=engine, settings=settings, model_id=model_id,
                  limits=Limits(model_context(model), cutoff_len), stop_ids=stops, api_key=api_key)
