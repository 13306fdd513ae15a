"""GGUF export in pure Python: a Hugging Face model folder to one .gguf file llama.cpp, Ollama and transformers load."""

from tunelab.export.gguf.arch import ARCHITECTURES
from tunelab.export.gguf.quantize import GGUF_TYPES, K_QUANTS, PYTHON_TYPES
from tunelab.export.gguf.write import GgufReport, write_gguf

__all__ = ["ARCHITECTURES", "GGUF_TYPES", "K_QUANTS", "PYTHON_TYPES", "GgufReport", "write_gguf"]
