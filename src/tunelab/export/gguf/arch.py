"""The architecture table: a Hugging Face `model_type` to its GGUF architecture, tensor names, tensor fixes and
hyperparameter metadata."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
import numpy as np
from gguf import MODEL_ARCH, MODEL_ARCH_NAMES, GGUFWriter, RopeScalingType, get_tensor_name_map

from tunelab.export.errors import ExportError

# config.json values as json.load gives them
ConfigValue = str | int | float | bool | None | list | dict
HFConfig = dict[str, ConfigValue]


@dataclass(frozen=True)
class ArchSpec:
    """What differs between the architectures we write."""

    arch: MODEL_ARCH
    # llama.cpp's llama graph expects q/k rows interleaved per rotary pair (the original Meta layout); HF's
    # LlamaForCausalLM stores them half-split, so the converter permutes them. Qwen uses the HF layout as is.
    permute_qk: bool = False
    # Gemma's RMSNorm multiplies by (1 + w); llama.cpp's by w, so the stored weight is w + 1.
    norm_plus_one: bool = False
    # Architectures whose attention head size is stated apart from hidden_size / heads.
    head_dim_keys: bool = False
    # transformers' default for a config.json that does not state tie_word_embeddings
    tied_by_default: bool = False
    extra: Callable[[GGUFWriter, HFConfig], None] | None = None

    @property
    def name(self) -> str:
        """The GGUF architecture name (general.architecture)."""
        return MODEL_ARCH_NAMES[self.arch]


def _gemma2_extra(writer: GGUFWriter, config: HFConfig) -> None:
    """Gemma 2's soft-capping and sliding window, which llama.cpp reads from the metadata."""
    writer.add_attn_logit_softcapping(float(config.get("attn_logit_softcapping") or 50.0))
    writer.add_final_logit_softcapping(float(config.get("final_logit_softcapping") or 30.0))
    if config.get("sliding_window"):
        writer.add_sliding_window(int(config["sliding_window"]))


ARCHITECTURES: dict[str, ArchSpec] = {
    "llama": ArchSpec(MODEL_ARCH.LLAMA, permute_qk=True),
    "qwen2": ArchSpec(MODEL_ARCH.QWEN2),
    "qwen3": ArchSpec(MODEL_ARCH.QWEN3, head_dim_keys=True),
    "gemma2": ArchSpec(MODEL_ARCH.GEMMA2, norm_plus_one=True, head_dim_keys=True, tied_by_default=True,
                       extra=_gemma2_extra),
}


def arch_spec(config: HFConfig, where: str) -> ArchSpec:
    """The spec for a config.json's model_type, or an ExportError listing the architectures we write."""
    model_type = str(config.get("model_type"))
    if model_type not in ARCHITECTURES:
        raise ExportError(f"{where}: model_type {model_type!r} has no GGUF mapping in tunelab; the GGUF writer maps "
                          f"{', '.join(sorted(ARCHITECTURES))}. Export this model as export_format: hf instead.")
    return ARCHITECTURES[model_type]


def head_dim(config: HFConfig) -> int:
    """The attention head size: stated, or hidden_size / heads."""
    return int(config.get("head_dim") or int(config["hidden_size"]) // int(config["num_attention_heads"]))


def _rope_parameters(config: HFConfig) -> dict:
    """transformers 5 keeps rope_theta/rope_type under rope_parameters; older configs at the top level."""
    params = config.get("rope_parameters") or config.get("rope_scaling") or {}
    return {"rope_theta": config.get("rope_theta"), **params} if isinstance(params, dict) else {}


def add_hparams(writer: GGUFWriter, spec: ArchSpec, config: HFConfig, where: str) -> None:
    """The model-shape metadata llama.cpp reads for this architecture."""
    writer.add_context_length(int(config["max_position_embeddings"]))
    writer.add_embedding_length(int(config["hidden_size"]))
    writer.add_block_count(int(config["num_hidden_layers"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_head_count(int(config["num_attention_heads"]))
    writer.add_head_count_kv(int(config.get("num_key_value_heads") or config["num_attention_heads"]))
    writer.add_layer_norm_rms_eps(float(config["rms_norm_eps"]))
    writer.add_vocab_size(int(config["vocab_size"]))
    rope = _rope_parameters(config)
    if rope.get("rope_theta") is not None:
        writer.add_rope_freq_base(float(rope["rope_theta"]))
    rope_type = rope.get("rope_type") or rope.get("type") or "default"
    if rope_type == "linear":
        writer.add_rope_scaling_type(RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(rope["factor"]))
    elif rope_type != "default":
        raise ExportError(f"{where}: rope_type {rope_type!r} is not written by tunelab's GGUF writer (it writes "
                          "'default' and 'linear' rotary embeddings); export as export_format: hf instead.")
    if spec.head_dim_keys:
        writer.add_key_length(head_dim(config))
        writer.add_value_length(head_dim(config))
    else:
        writer.add_rope_dimension_count(head_dim(config))
    if spec.extra is not None:
        spec.extra(writer, config)


def gguf_name(spec: ArchSpec, hf_name: str, n_layers: int) -> str | None:
    """The GGUF tensor name for an HF parameter name, or None when it has none."""
    base, _, suffix = hf_name.rpartition(".")
    name = get_tensor_name_map(spec.arch, n_layers).get_name(base)
    return None if name is None else f"{name}.{suffix}"


def _permute(weights: np.ndarray, n_head: int) -> np.ndarray:
    """Half-split rotary rows to interleaved pairs, per head (what llama.cpp's llama graph expects)."""
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


_ATTN_QK = re.compile(r"\.attn_([qk])\.(weight|bias)$")


def fix_tensor(spec: ArchSpec, config: HFConfig, name: str, data: np.ndarray) -> np.ndarray:
    """The tensor as llama.cpp expects it: q/k rows permuted for llama, Gemma norms stored as 1 + w."""
    if spec.permute_qk and (match := _ATTN_QK.search(name)):
        heads = int(config["num_attention_heads"])
        if match.group(1) == "k":
            heads = int(config.get("num_key_value_heads") or heads)
        return _permute(data, heads)
    if spec.norm_plus_one and name.endswith("norm.weight"):
        return data + 1.0
    return data
