"""What export checks before loading anything heavy: the model layer's checks (model/preflight.py: adapter folders
complete, safetensors files whole, adapter shapes that fit the base) plus export's own: a base that is not
quantized, since adapters cannot be merged into quantized weights."""

from __future__ import annotations

from pathlib import Path

from tunelab.export.errors import ExportError
from tunelab.export.files import read_json
from tunelab.model.errors import ModelError
from tunelab.model.preflight import check_adapters, safetensors_header, tensor_shapes

__all__ = ["check_not_quantized", "preflight", "safetensors_header"]


def check_not_quantized(model_dir: Path) -> None:
    """Adapters cannot be merged into quantized weights."""
    config = read_json(model_dir / "config.json", "give a Hugging Face model folder (config.json, weights, tokenizer)")
    quantization = config.get("quantization_config")
    if quantization:
        method = quantization.get("quant_method", "quantized") if isinstance(quantization, dict) else "quantized"
        raise ExportError(f"{model_dir / 'config.json'}: the base model is {method} (quantization_config); adapters "
                          "cannot be merged into quantized weights: set model_name_or_path to the unquantized model")


def preflight(model_dir: Path, adapters: list[Path]) -> None:
    """The model layer's checks of the base (or trained full model) folder and the adapters in merge order, and
    the quantization check; their problems are export errors here."""
    try:
        tensor_shapes(model_dir)  # the base's files are whole, with adapters or without
        if adapters:
            check_not_quantized(model_dir)
        check_adapters(model_dir, adapters)
    except ModelError as exc:
        raise ExportError(str(exc)) from None
