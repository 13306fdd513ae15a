"""The decoder a predict or eval run uses, by infer_backend: tunelab's own (a ModelBundle) or vLLM (a VllmBundle)."""

from __future__ import annotations

from tunelab.config.schema import RunConfig
from tunelab.infer.backends.vllm_load import VllmBundle, load_vllm
from tunelab.infer.load import load_for_inference
from tunelab.model.load import ModelBundle

# Rows handed to vLLM at once by predict: vLLM batches them itself; a chunk is also what a resumed run may redo.
VLLM_ROWS = 256


def load_decoder(config: RunConfig) -> ModelBundle | VllmBundle:
    """The model predict and eval generation answer with, on the configured backend."""
    if config.backend.infer_backend == "vllm":
        return load_vllm(config)
    return load_for_inference(config)
