"""GGUF tensor types: the names tunelab accepts, which tensors each type quantizes, and the encoding itself."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType
from gguf.quants import quant_shape_to_byte_shape, quantize

Q = GGMLQuantizationType


@dataclass(frozen=True)
class FileType:
    """One `gguf_type`: the ggml type of its 2-D tensors and the file type llama.cpp records for it."""

    tensor: GGMLQuantizationType
    file: LlamaFileType


# Types the `gguf` package encodes in Python.
PYTHON_TYPES: dict[str, FileType] = {
    "f32": FileType(Q.F32, LlamaFileType.ALL_F32),
    "f16": FileType(Q.F16, LlamaFileType.MOSTLY_F16),
    "bf16": FileType(Q.BF16, LlamaFileType.MOSTLY_BF16),
    "q8_0": FileType(Q.Q8_0, LlamaFileType.MOSTLY_Q8_0),
    "q4_0": FileType(Q.Q4_0, LlamaFileType.MOSTLY_Q4_0),
    "q4_1": FileType(Q.Q4_1, LlamaFileType.MOSTLY_Q4_1),
    "q5_0": FileType(Q.Q5_0, LlamaFileType.MOSTLY_Q5_0),
    "q5_1": FileType(Q.Q5_1, LlamaFileType.MOSTLY_Q5_1),
}

# K-quants: the `gguf` package only dequantizes these, so llama.cpp's `llama-quantize` writes them from an f16 file.
K_QUANTS: tuple[str, ...] = ("q2_k", "q3_k_s", "q3_k_m", "q3_k_l", "q4_k_s", "q4_k_m", "q5_k_s", "q5_k_m", "q6_k")

GGUF_TYPES: tuple[str, ...] = tuple(PYTHON_TYPES) + K_QUANTS

FLOAT_TYPES = (Q.F32, Q.F16, Q.BF16)


def tensor_type(gguf_type: str, shape: tuple[int, ...]) -> tuple[GGMLQuantizationType, str | None]:
    """The ggml type a tensor of this shape gets under gguf_type, and why it stays float when it cannot be quantized.

    1-D tensors (norms, biases) stay f32 in every type, as llama.cpp keeps them; a 2-D tensor whose row is not a
    whole number of quant blocks stays f16.
    """
    wanted = PYTHON_TYPES[gguf_type].tensor
    if len(shape) < 2:
        return Q.F32, None
    if wanted in FLOAT_TYPES:
        return wanted, None
    block = GGML_QUANT_SIZES[wanted][0]
    if shape[-1] % block:
        return Q.F16, f"row of {shape[-1]} values is not a multiple of the {wanted.name} block ({block}); kept f16"
    return wanted, None


def encoded_nbytes(shape: tuple[int, ...], qtype: GGMLQuantizationType) -> int:
    """Bytes a tensor of this (logical, numpy-order) shape takes once encoded as qtype."""
    return int(np.prod(quant_shape_to_byte_shape(shape, qtype)))


def encode(data: np.ndarray, qtype: GGMLQuantizationType) -> np.ndarray:
    """The bytes (or floats) to write for float32 data under qtype."""
    return quantize(np.ascontiguousarray(data, dtype=np.float32), qtype)
