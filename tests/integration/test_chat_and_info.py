"""`tunelab chat --prompt/--compare`, `tunelab models`, `tunelab env`, model resolution errors."""

from __future__ import annotations

import json

from .clirun import QUICKSTART, tunelab


def test_chat_prompt_answers_with_the_trained_adapter(trained_run):
    out, _ = trained_run
    result = tunelab("chat", QUICKSTART, f"output_dir={out}", "max_new_tokens=12", "--prompt", "Who are you?")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"using the adapter trained in {out}" in result.stderr
    assert result.stdout.strip()


def test_chat_compare_prints_base_and_fine_tuned(trained_run):
    out, _ = trained_run
    result = tunelab("chat", QUICKSTART, f"output_dir={out}", "max_new_tokens=8", "--compare",
                     "--prompt", "Who are you?", "--prompt", "What is 2+2?")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("base model :") == 2 and result.stdout.count("fine-tuned :") == 2


def test_chat_without_adapter_uses_the_base_model(tmp_path):
    result = tunelab("chat", QUICKSTART, f"output_dir={tmp_path / 'none'}", "max_new_tokens=8",
                     "--prompt", "What is the capital of France?")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "using the adapter" not in result.stderr
    assert result.stdout.strip()


def test_chat_repl_commands(trained_run, tmp_path):
    out, _ = trained_run
    saved = tmp_path / "chat.json"
    result = tunelab("chat", QUICKSTART, f"output_dir={out}", "max_new_tokens=8",
                     stdin=f"/system You are terse.\n/set temperature=0.2\nWho are you?\n/retry\nAnd again?\n"
                           f"/save {saved}\n/clear\nHello\n/exit\n")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("assistant> ") == 4
    for text in ("(system prompt set)", "temperature = 0.2", "(conversation cleared)", "(saved 4 messages"):
        assert text in result.stderr, text
    messages = json.loads(saved.read_text())["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant"]
    assert messages[0]["content"] == "You are terse." and messages[1]["content"] == "Who are you?"


def test_models_lists_the_embedded_alias():
    result = tunelab("models", "--json")
    assert result.returncode == 0
    assert '"alias": "smollm2-135m-instruct"' in result.stdout and '"installed": "yes"' in result.stdout


def test_env_reports_versions():
    result = tunelab("env")
    assert result.returncode == 0
    assert "torch: 2." in result.stdout and "transformers:" in result.stdout and "cpu_fast_bf16" in result.stdout


def test_unknown_model_lists_local_options(tmp_path):
    result = tunelab("chat", QUICKSTART, "model_name_or_path=smollm2-135m-instuct", "--prompt", "hi")
    assert result.returncode == 1
    assert "did you mean smollm2-135m-instruct?" in result.stderr and "offline you can use" in result.stderr


def test_hub_id_offline_fails_with_local_options():
    result = tunelab("chat", QUICKSTART, "model_name_or_path=no-such-org/no-such-model-xyz", "--prompt", "hi",
                     timeout=120)
    assert result.returncode == 1
    assert "could not download 'no-such-org/no-such-model-xyz'" in result.stderr
    assert "offline you can use" in result.stderr


def test_gguf_file_loads_directly(tmp_path, monkeypatch):
    from tunelab.model.registry import aliases

    gguf = aliases()["smollm2-135m-instruct"].gguf_path()
    env_cache = tmp_path / "cache"
    monkeypatch.setenv("TUNELAB_CACHE", str(env_cache))
    result = tunelab("chat", QUICKSTART, f"model_name_or_path={gguf}", f"output_dir={tmp_path / 'x'}",
                     "max_new_tokens=6", "--prompt", "Say hello.")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "converting SmolLM2-135M-Instruct.Q4_1.gguf" in result.stderr
    assert any(env_cache.glob("gguf/*/model.safetensors"))


def test_python_dash_m_version():
    result = tunelab("--version")
    assert result.returncode == 0 and "tunelab 0.1.0" in result.stdout
