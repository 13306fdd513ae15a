"""write_modelfile: the Go TEMPLATE read off each chat template renders like the Jinja template, or the template is
refused with an error naming the conversation and the difference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CHATML, make_tokenizer
from tunelab.data.chat_template import install, template_names
from tunelab.export.chat_shape import adds_bos
from tunelab.export.errors import ExportError
from tunelab.export.go_render import render
from tunelab.export.modelfile import parse_modelfile
from tunelab.export.ollama import build_modelfile, ollama_values, write_modelfile
from tunelab.model.registry import aliases

FIXTURE_TOKENIZERS = Path(__file__).parents[2] / "fixtures" / "templates" / "tokenizers"
# The fixture tokenizer holding each named template's tokens (bpe_qwen for the rest); spm adds BOS on encode.
FOLDER_OF = {"llama3": "bpe_llama3", "deepseek3": "bpe_deepseek3", "glm4": "bpe_glm", "chatglm3": "bpe_glm",
             "gemma": "spm", "gemma3": "spm", "llama2": "spm", "mistral": "spm"}

# Qwen2.5-Instruct's chat template without its tools branch: a default system prompt, and an empty system message
# still written as a block.
QWEN25 = ("{%- if messages[0]['role'] == 'system' %}"
          "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
          "{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
          "<|im_end|>\\n' }}{%- endif %}"
          "{%- for message in messages %}{%- if message.role == 'user' or (message.role == 'system' and not loop.first)"
          " or message.role == 'assistant' %}"
          "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endif %}"
          "{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}")
# Gemma-2-it's chat template: no system role, contents trimmed.
GEMMA2 = ("{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
          "{% endif %}{% for message in messages %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}"
          "{% else %}{% set role = message['role'] %}{% endif %}"
          "{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}"
          "{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}")

# Meta-Llama-3-8B-Instruct's chat template: BOS text first, contents trimmed.
LLAMA3_META = ("{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
               "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + "
               "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
               "{{ content }}{% endfor %}{% if add_generation_prompt %}"
               "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}")


def fixture_tokenizer(folder: str, template: str | None = None) -> Any:
    """A tokenizer of tests/fixtures/templates, with tunelab's named template installed."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(FIXTURE_TOKENIZERS / folder)
    if template:
        install(tokenizer, template)
    return tokenizer


def commands(text: str) -> dict[str, list[str]]:
    """The Modelfile's commands as Ollama reads them, by name."""
    out: dict[str, list[str]] = {}
    for name, value in parse_modelfile(text):
        out.setdefault(name, []).append(value)
    return out


def ollama_prompt(text: str, conversation: list[dict[str, str]]) -> str:
    """What Ollama's chat endpoint would render for a conversation with this Modelfile."""
    found = commands(text)
    return render(found["template"][0], ollama_values(conversation, found.get("system", [""])[0]))


def test_smollm2_own_template_from_the_cached_model(tmp_path: Path) -> None:
    from transformers import AutoTokenizer

    folder = aliases()["smollm2-135m-instruct"].cache_path()
    if not (folder / "tokenizer_config.json").is_file():
        pytest.skip(f"SmolLM2 is not converted in {folder}; run `tunelab models` once")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    path = write_modelfile(tmp_path, "smollm2.gguf", tokenizer, None)
    found = commands(path.read_text(encoding="utf-8"))
    assert path == tmp_path / "Modelfile" and found["model"] == ["./smollm2.gguf"]
    # the model's own default system prompt (no final period, unlike LLaMA-Factory's smollm2 template)
    assert found["system"] == ["You are a helpful AI assistant named SmolLM, trained by Hugging Face"]
    assert found["stop"] == ["<|im_end|>"]
    conversation = [{"role": "user", "content": "Hi"}]
    assert ollama_prompt(path.read_text(), conversation) == tokenizer.apply_chat_template(
        conversation, tokenize=False, add_generation_prompt=True)


def test_qwen25_default_system_prompt(tiny_tokenizer_json: str) -> None:
    text = build_modelfile("q.gguf", make_tokenizer(tiny_tokenizer_json, QWEN25), None)
    found = commands(text)
    assert found["system"] == ["You are Qwen, created by Alibaba Cloud. You are a helpful assistant."]
    empty = [{"role": "system", "content": ""}, {"role": "user", "content": "hi"}]
    assert ollama_prompt(text, empty).startswith("<|im_start|>system\n<|im_end|>\n<|im_start|>user\nhi")


def test_chatml_without_default_system(tiny_tokenizer_json: str) -> None:
    text = build_modelfile("m.gguf", make_tokenizer(tiny_tokenizer_json, CHATML), None)
    assert "system" not in commands(text)
    assert ollama_prompt(text, [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]) == \
        "<|im_start|>user\na<|im_end|>\n<|im_start|>assistant\nb"  # Ollama's prefill: the last answer stays open


def test_run_default_system_replaces_the_templates(tiny_tokenizer_json: str) -> None:
    tokenizer = make_tokenizer(tiny_tokenizer_json, QWEN25)
    text = build_modelfile("q.gguf", tokenizer, "你是一个乐于助人的助手。")
    assert commands(text)["system"] == ["你是一个乐于助人的助手。"]
    assert "Qwen" not in ollama_prompt(text, [{"role": "user", "content": "hi"}])
    no_system = build_modelfile("q.gguf", tokenizer, "")  # the run trained without any system prompt
    assert "system" not in commands(no_system)
    assert ollama_prompt(no_system, [{"role": "user", "content": "hi"}]) == \
        tokenizer.apply_chat_template([{"role": "system", "content": ""}, {"role": "user", "content": "hi"}],
                                      tokenize=False, add_generation_prompt=True)


def test_llama3_bos_text_kept_when_the_tokenizer_does_not_add_bos() -> None:
    tokenizer = fixture_tokenizer("bpe_llama3", "llama3")
    assert not adds_bos(tokenizer)
    text = build_modelfile("l.gguf", tokenizer, None)
    assert ollama_prompt(text, [{"role": "user", "content": "hi"}]).startswith(
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>")
    assert commands(text)["stop"] == ["<|eot_id|>", "<|eom_id|>"]  # end of turn (= EOS here), then llama3's own


def test_bos_text_left_to_llama_cpp_when_the_tokenizer_adds_bos() -> None:
    tokenizer = fixture_tokenizer("spm", "gemma")
    assert adds_bos(tokenizer)
    text = build_modelfile("g.gguf", tokenizer, None)
    prompt = ollama_prompt(text, [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}])
    assert prompt == "<start_of_turn>user\nBe brief.\n\nhi<end_of_turn>\n<start_of_turn>model\n"  # no <s>
    assert commands(text)["stop"] == ["<end_of_turn>"]


@pytest.mark.parametrize(("folder", "template"), [("spm", GEMMA2), ("bpe_llama3", LLAMA3_META)])
def test_official_templates_that_trim_contents_are_refused(folder: str, template: str) -> None:
    tokenizer = fixture_tokenizer(folder)
    tokenizer.chat_template = template
    with pytest.raises(ExportError, match=r"(?s)conversation 'whitespace around contents'.*Ollama: .*Jinja: .*trim"):
        build_modelfile("g.gguf", tokenizer, None)


def test_template_without_system_role_drops_system_and_refuses_a_default(tiny_tokenizer_json: str) -> None:
    tokenizer = make_tokenizer(tiny_tokenizer_json, GEMMA2.replace(" | trim", ""))
    text = build_modelfile("g.gguf", tokenizer, None)
    assert ollama_prompt(text, [{"role": "system", "content": "ignored"}, {"role": "user", "content": "hi"}]) == \
        "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n"
    with pytest.raises(ExportError, match="has no system role"):
        build_modelfile("g.gguf", tokenizer, "Be brief.")


def test_numbered_rounds_cannot_be_expressed(tiny_tokenizer_json: str) -> None:
    rounds = ("{% for m in messages %}{% if m['role'] == 'user' %}[Round {{ loop.index }}] {{ m['content'] }} => "
              "{% else %}{{ m['content'] }}\n{% endif %}{% endfor %}")
    with pytest.raises(ExportError, match="conversation 'three user turns without system'.*differ at character"):
        build_modelfile("m.gguf", make_tokenizer(tiny_tokenizer_json, rounds), None)


def test_content_written_twice_cannot_be_expressed(tiny_tokenizer_json: str) -> None:
    echo = "{% for m in messages %}{{ m['content'] }}|{{ m['content'] }}{% endfor %}"
    with pytest.raises(ExportError, match="content once and in order"):
        build_modelfile("m.gguf", make_tokenizer(tiny_tokenizer_json, echo), None)


def test_no_chat_template_is_an_error(tiny_tokenizer_json: str) -> None:
    with pytest.raises(ExportError, match="no chat template"):
        build_modelfile("m.gguf", make_tokenizer(tiny_tokenizer_json, None), None)


@pytest.mark.parametrize("name", template_names())
def test_every_named_template_writes_a_checked_modelfile(name: str) -> None:
    """All 25 shipped templates pass the check (on a tokenizer holding their tokens; spm adds BOS)."""
    text = build_modelfile("m.gguf", fixture_tokenizer(FOLDER_OF.get(name, "bpe_qwen"), name), None)
    assert commands(text)["stop"]


@pytest.mark.parametrize(("folder", "system"), [("jinja_qwen3", None),
                                                ("jinja_smollm2", "You are a helpful AI assistant named SmolLM, "
                                                                  "trained by Hugging Face")])
def test_models_own_templates_from_the_fixtures(folder: str, system: str | None) -> None:
    """Qwen3's and SmolLM2's own chat templates (as shipped with the models) pass the check."""
    text = build_modelfile("m.gguf", fixture_tokenizer(folder), None)
    assert commands(text).get("system", [None])[0] == system
    assert commands(text)["stop"] == ["<|im_end|>"]
