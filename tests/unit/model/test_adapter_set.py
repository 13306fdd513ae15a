"""Several named adapters on one base: the --adapters list, the checks naming the adapter that does not fit, and
loading them under their names (each answers like itself)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import chatml_template, make_llama, make_tokenizer
from tunelab.config.load import build
from tunelab.infer.load import load_for_inference
from tunelab.model.adapter_set import NamedAdapter, check_names, parse_adapters
from tunelab.model.adapters import AdapterError, load_named_adapters
from tunelab.model.errors import ModelError


def save_lora(folder: Path, vocab: int, seed: int, hidden: int = 32, tokenizer: Any = None) -> Path:
    """A random (non-zero) LoRA on a tiny Llama, saved like a training run saves one."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    base = make_llama(vocab) if hidden == 32 else LlamaForCausalLM(LlamaConfig(
        vocab_size=vocab, hidden_size=hidden, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2))
    lora = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    return folder


def test_parse_adapters() -> None:
    assert parse_adapters("sql=saves/sql, chat-v2=/abs/chat") == [NamedAdapter("sql", Path("saves/sql")),
                                                                  NamedAdapter("chat-v2", Path("/abs/chat"))]
    with pytest.raises(AdapterError, match="'saves/sql' is not name=path"):
        parse_adapters("saves/sql")
    with pytest.raises(AdapterError, match="'v1.2' cannot name an adapter"):
        parse_adapters("v1.2=saves/a")
    with pytest.raises(AdapterError, match="'__base__' cannot name"):
        parse_adapters("__base__=saves/a")
    with pytest.raises(AdapterError, match="the name 'a' is given twice"):
        parse_adapters("a=x,a=y")
    with pytest.raises(AdapterError, match="no adapter given"):
        parse_adapters(" , ")
    with pytest.raises(AdapterError, match="--adapters base=x: 'base' is the base model's id"):
        check_names([NamedAdapter("base", Path("x"))], "base")


def config_for(model_dir: Path, **keys: str) -> Any:
    return build({"model_name_or_path": str(model_dir), **keys}, purpose="infer")


def test_mismatched_adapter_is_named_at_start(tiny_model_dir: Path, tiny_tokenizer: Any, tmp_path: Path) -> None:
    vocab = len(tiny_tokenizer)
    good = save_lora(tmp_path / "good", vocab, 1)
    other = save_lora(tmp_path / "other", vocab, 2, hidden=48)
    with pytest.raises(ModelError, match=r"--adapters wide=.*other: .*does not fit the base model"):
        load_for_inference(config_for(tiny_model_dir), named=[NamedAdapter("ok", good),
                                                               NamedAdapter("wide", other)])
    with pytest.raises(ModelError, match=r"--adapters gone=.*missing: .*does not exist"):
        load_for_inference(config_for(tiny_model_dir), named=[NamedAdapter("gone", tmp_path / "missing")])


def test_adapter_with_another_vocabulary(tiny_model_dir: Path, tiny_tokenizer_json: str, tiny_tokenizer: Any,
                                         tmp_path: Path) -> None:
    grown = make_tokenizer(tiny_tokenizer_json, chatml_template())
    grown.add_tokens(["<extra_token>"])
    vocab = len(tiny_tokenizer)
    first = save_lora(tmp_path / "first", vocab, 1, tokenizer=make_tokenizer(tiny_tokenizer_json, chatml_template()))
    grown_dir = save_lora(tmp_path / "grown", vocab, 2, tokenizer=grown)
    with pytest.raises(ModelError, match=r"--adapters big=.*grown: its tokenizer has \d+ tokens but the base"):
        load_for_inference(config_for(tiny_model_dir), named=[NamedAdapter("a", first), NamedAdapter("big", grown_dir)])


def test_adapter_with_another_template(tiny_model_dir: Path, tiny_tokenizer_json: str, tiny_tokenizer: Any,
                                       tmp_path: Path) -> None:
    vocab = len(tiny_tokenizer)
    first = save_lora(tmp_path / "first", vocab, 1, tokenizer=make_tokenizer(tiny_tokenizer_json, chatml_template()))
    other = make_tokenizer(tiny_tokenizer_json, "{% for m in messages %}{{ m.content }}{% endfor %}")
    second = save_lora(tmp_path / "second", vocab, 2, tokenizer=other)
    named = [NamedAdapter("a", first), NamedAdapter("b", second)]
    with pytest.raises(ModelError, match=r"--adapters b=.*second: its chat template differs"):
        load_for_inference(config_for(tiny_model_dir), named=named)
    # a template named in the config renders every request: the adapters' own templates no longer matter
    bundle = load_for_inference(config_for(tiny_model_dir, template="chatml"), named=named)
    assert sorted(bundle.model.peft_config) == ["a", "b"]


def test_named_adapters_answer_like_themselves(tiny_model_dir: Path, tiny_tokenizer: Any, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel

    vocab = len(tiny_tokenizer)
    folders = {"sql": save_lora(tmp_path / "sql", vocab, 1), "chat": save_lora(tmp_path / "chat", vocab, 2)}
    served = load_named_adapters(make_llama(vocab), [(name, str(path)) for name, path in folders.items()])
    assert sorted(served.peft_config) == ["chat", "sql"] and served.active_adapter == "sql"
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        for name, path in folders.items():
            alone = PeftModel.from_pretrained(make_llama(vocab), str(path)).eval()
            served.set_adapter(name)
            assert torch.allclose(served(input_ids=ids).logits, alone(input_ids=ids).logits, atol=1e-5)
        with served.disable_adapter():
            assert torch.allclose(served(input_ids=ids).logits, make_llama(vocab)(input_ids=ids).logits, atol=1e-5)
