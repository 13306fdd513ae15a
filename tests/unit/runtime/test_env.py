"""runtime.env: the cache folder and the offline switch come from environment variables, read only here."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunelab.runtime import env


def test_cache_dir_prefers_tunelab_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TUNELAB_CACHE", str(tmp_path / "tc"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert env.cache_dir() == tmp_path / "tc"


def test_cache_dir_falls_back_to_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TUNELAB_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert env.cache_dir() == tmp_path / "xdg" / "tunelab"


@pytest.mark.parametrize(("value", "offline"), [("1", True), ("true", True), ("YES", True), ("0", False), ("", False)])
def test_hub_offline(monkeypatch: pytest.MonkeyPatch, value: str, offline: bool) -> None:
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    assert env.hub_offline() is offline


def test_describe_reports_versions() -> None:
    info = env.describe()
    assert info["packages"]["tunelab"] == "0.1.0"  # type: ignore[index]
    assert {"python", "torch_threads", "cpu_fast_bf16", "cuda", "cache_dir"} <= set(info)


def test_variable_set_restores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.delenv("TUNELAB_TEST_VAR", raising=False)
    with env.variable_set("TUNELAB_TEST_VAR", "inside"):
        assert env.variables()["TUNELAB_TEST_VAR"] == "inside"
    assert "TUNELAB_TEST_VAR" not in os.environ
    monkeypatch.setenv("TUNELAB_TEST_VAR", "before")
    with pytest.raises(RuntimeError), env.variable_set("TUNELAB_TEST_VAR", "inside"):
        raise RuntimeError("the block fails")
    assert os.environ["TUNELAB_TEST_VAR"] == "before"


def test_world_size_and_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert env.world_size() == 1
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert env.world_size() == 4
    assert env.cpu_cores() >= 1
