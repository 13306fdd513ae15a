"""`tunelab api` settings: flags over LLaMA-Factory's API_HOST / API_PORT / API_KEY over the defaults."""

from __future__ import annotations

import pytest

from tunelab.config.load import load_config
from tunelab.interfaces.api.serve import ServeError, address, batch_size
from tunelab.interfaces.cli import build_parser, main


@pytest.fixture
def no_api_env(monkeypatch):
    for name in ("API_HOST", "API_PORT", "API_KEY"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_env_and_flags(no_api_env, monkeypatch):
    assert address(None, None, None) == address("127.0.0.1", 8000, None)
    monkeypatch.setenv("API_HOST", "0.0.0.0")
    monkeypatch.setenv("API_PORT", "9001")
    monkeypatch.setenv("API_KEY", "k")
    env = address(None, None, None)
    assert (env.host, env.port, env.api_key) == ("0.0.0.0", 9001, "k")
    flags = address("::1", 7000, "other")
    assert (flags.host, flags.port, flags.api_key) == ("::1", 7000, "other")


def test_bad_port_says_where_it_came_from(no_api_env, monkeypatch):
    monkeypatch.setenv("API_PORT", "eighty")
    with pytest.raises(ServeError, match="API_PORT='eighty'"):
        address(None, None, None)
    with pytest.raises(ServeError, match="out of range"):
        address(None, 70000, None)


def test_batch_size(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model_name_or_path: smollm2-135m-instruct\nper_device_eval_batch_size: 32\n")
    assert batch_size(None, load_config(cfg, [], purpose="infer")) == 32
    assert batch_size(4, load_config(cfg, ["per_device_eval_batch_size=2"], purpose="infer")) == 4
    assert batch_size(None, load_config(cfg, ["per_device_eval_batch_size=2"], purpose="infer")) == 8


def test_cli_registers_api(no_api_env, monkeypatch, capsys, tmp_path):
    args = build_parser().parse_args(["api", "cfg.yaml", "--port", "8123", "--api-key", "k", "--max-batch", "4"])
    assert (args.port, args.api_key, args.max_batch) == (8123, "k", 4)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model_name_or_path: smollm2-135m-instruct\n")
    monkeypatch.setenv("API_PORT", "nope")
    assert main(["api", str(cfg)]) == 2
    assert "API_PORT='nope'" in capsys.readouterr().err
