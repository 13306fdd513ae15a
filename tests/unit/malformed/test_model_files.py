"""Generated broken model, adapter and GGUF files, through every command that loads a model (train, chat, predict,
api, export): each is refused before anything heavy loads, with a non-zero exit, no traceback and the file named."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.unit.malformed.conftest import Run, register, write_config

Mutation = Callable[[Path, Path], tuple[str, str | None]]  # (model folder copy, adapter copy) -> (model, adapter)


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def config_not_json(model: Path, adapter: Path) -> tuple[str, str | None]:
    truncate(model / "config.json")
    return str(model), None


def weights_truncated(model: Path, adapter: Path) -> tuple[str, str | None]:
    truncate(model / "model.safetensors")
    return str(model), None


def weights_header_garbage(model: Path, adapter: Path) -> tuple[str, str | None]:
    path = model / "model.safetensors"
    path.write_bytes(b"\xff" * 8 + path.read_bytes()[8:])
    return str(model), None


def weights_file_as_model(model: Path, adapter: Path) -> tuple[str, str | None]:
    return str(model / "model.safetensors"), None


def symlink_loop(model: Path, adapter: Path) -> tuple[str, str | None]:
    loop = model.parent / "loop"
    loop.symlink_to(loop)
    return str(loop), None


def not_gguf(model: Path, adapter: Path) -> tuple[str, str | None]:
    path = model.parent / "model.gguf"
    path.write_text("this is not a GGUF file\n", encoding="utf-8")
    return str(path), None


def gguf_truncated(model: Path, adapter: Path) -> tuple[str, str | None]:
    path = model.parent / "model.gguf"
    path.write_bytes(b"GGUF\x03\x00\x00\x00\x05\x00")
    return str(path), None


def adapter_weights_truncated(model: Path, adapter: Path) -> tuple[str, str | None]:
    truncate(adapter / "adapter_model.safetensors")
    return str(model), str(adapter)


def adapter_config_not_json(model: Path, adapter: Path) -> tuple[str, str | None]:
    truncate(adapter / "adapter_config.json")
    return str(model), str(adapter)


def adapter_file_as_folder(model: Path, adapter: Path) -> tuple[str, str | None]:
    return str(model), str(adapter / "adapter_model.safetensors")


def adapter_missing(model: Path, adapter: Path) -> tuple[str, str | None]:
    return str(model), str(adapter.parent / "no-such-adapter")


def adapter_symlink_loop(model: Path, adapter: Path) -> tuple[str, str | None]:
    loop = adapter.parent / "adapter-loop"
    loop.symlink_to(loop)
    return str(model), str(loop)


def adapter_other_base(model: Path, adapter: Path) -> tuple[str, str | None]:
    other = adapter.parent / "other-adapter"
    shutil.copytree(OTHER_ADAPTER[0], other)
    return str(model), str(other)


MUTATIONS: dict[str, tuple[Mutation, str]] = {  # name -> (mutation, what the message must name)
    "config-not-json": (config_not_json, "config.json"),
    "weights-truncated": (weights_truncated, "model.safetensors"),
    "weights-header-garbage": (weights_header_garbage, "model.safetensors"),
    "weights-file-as-model": (weights_file_as_model, "model.safetensors"),
    "symlink-loop": (symlink_loop, "loop"),
    "not-gguf": (not_gguf, "model.gguf"),
    "gguf-truncated": (gguf_truncated, "model.gguf"),
    "adapter-weights-truncated": (adapter_weights_truncated, "adapter_model.safetensors"),
    "adapter-config-not-json": (adapter_config_not_json, "adapter_config.json"),
    "adapter-file-as-folder": (adapter_file_as_folder, "adapter_model.safetensors"),
    "adapter-missing": (adapter_missing, "no-such-adapter"),
    "adapter-symlink-loop": (adapter_symlink_loop, "adapter-loop"),
    "adapter-other-base": (adapter_other_base, "other-adapter"),
}
OTHER_ADAPTER: list[Path] = []
COMMANDS = ("train", "chat", "predict", "api", "export")


@pytest.fixture(scope="module")
def adapters(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A LoRA adapter of the tiny model, and (in OTHER_ADAPTER) one of a wider model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("adapters")
    lora = LoraConfig(r=2, target_modules=["q_proj", "v_proj"])
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    get_peft_model(base, lora).save_pretrained(folder / "adapter")
    config = LlamaConfig(vocab_size=base.config.vocab_size, hidden_size=48, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
    get_peft_model(LlamaForCausalLM(config), lora).save_pretrained(folder / "other")
    OTHER_ADAPTER[:] = [folder / "other"]
    return folder / "adapter"


def command_line(command: str, tmp_path: Path, model: str, adapter: str | None) -> list[str]:
    data = tmp_path / "data"
    data.mkdir()
    (data / "qa.json").write_text(json.dumps([{"instruction": "hi", "output": "hello"}] * 4), encoding="utf-8")
    register(data, "qa", "qa.json", {})
    keys: dict[str, object] = {"model_name_or_path": model, "dataset_dir": str(data),
                               "output_dir": str(tmp_path / "out"), "max_new_tokens": 2, "max_steps": 1}
    if adapter:
        keys["adapter_name_or_path"] = adapter
    if command == "train":
        keys["dataset"] = "qa"
    if command == "predict":
        keys["eval_dataset"] = "qa"
    if command == "export":
        keys["export_dir"] = str(tmp_path / "export")
    config = str(write_config(tmp_path, **keys))
    return {"chat": ["chat", config, "--prompt", "hi"], "api": ["api", config, "--port", "1"]}.get(command,
                                                                                                 [command, config])


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_broken_model_files(mutation: str, command: str, tiny_model_dir: Path, adapters: Path, tmp_path: Path,
                            run_cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    def serving(*args: object, **kwargs: object) -> None:
        raise AssertionError("the API started serving a broken model")

    monkeypatch.setattr(uvicorn, "run", serving)
    model, adapter = tmp_path / "model", tmp_path / "adapter"
    shutil.copytree(tiny_model_dir, model)
    shutil.copytree(adapters, adapter)
    make, name = MUTATIONS[mutation]
    model_arg, adapter_arg = make(model, adapter)
    outcome = run_cli(*command_line(command, tmp_path, model_arg, adapter_arg))
    outcome.check_refused(name)
