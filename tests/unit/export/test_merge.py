"""The merged folder answers like base + adapters: logits equal in float32, several adapters in order, the
tokenizer, chat template and generation config saved with it, and the export-time check written."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tunelab.config.load import build
from tunelab.export.run import REPORT, export

IDS = [[5, 17, 42, 99, 3, 250, 7, 64]]


def config(**keys: object) -> object:
    return build({key: str(value) if isinstance(value, Path) else value for key, value in keys.items()}, "export")


def base_with_adapters(base: Path, adapters: list[Path]) -> torch.nn.Module:
    """base + adapters as PEFT runs them unmerged (the reference)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32), adapters[0],
                                      adapter_name="a0")
    for i, folder in enumerate(adapters[1:], start=1):
        model.load_adapter(folder, adapter_name=f"a{i}")
    model.base_model.set_adapter([f"a{i}" for i in range(len(adapters))])
    return model.eval()


def logits(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=torch.tensor(IDS)).logits


def merged(folder: Path) -> torch.nn.Module:
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


def test_merged_logits_equal_base_plus_adapter(tiny_model_dir: Path, make_adapter: Callable[..., Path],
                                               tmp_path: Path) -> None:
    adapter = make_adapter()
    out = tmp_path / "export"
    report = export(config(model_name_or_path=tiny_model_dir, adapter_name_or_path=adapter, export_dir=out))
    reference = logits(base_with_adapters(tiny_model_dir, [adapter]))
    base = logits(merged(tiny_model_dir))
    assert (reference - base).abs().max() > 1e-2  # the adapter changes the model, so the test can fail
    torch.testing.assert_close(logits(merged(out)), reference, atol=1e-5, rtol=0)
    assert report.dtype == "float32" and (out / "model.safetensors").is_file()
    saved = json.loads((out / REPORT).read_text())
    (check,) = saved["checks"]
    assert check["greedy_equal"] == check["prompts"] == 5 and check["prompts_equal"]
    assert check["max_abs_logit_diff"] < 1e-4 and check["path"] == str(out)
    assert not list(tmp_path.glob(".export.partial-*"))


def test_several_adapters_merge_in_order(tiny_model_dir: Path, make_adapter: Callable[..., Path],
                                         tmp_path: Path) -> None:
    first, second = make_adapter("a", seed=1), make_adapter("b", seed=2, targets=("q_proj", "o_proj"))
    out = tmp_path / "export"
    export(config(model_name_or_path=tiny_model_dir, adapter_name_or_path=f"{first},{second}", export_dir=out,
                  export_verify=False))
    reference = logits(base_with_adapters(tiny_model_dir, [first, second]))
    only_first = logits(base_with_adapters(tiny_model_dir, [first]))
    assert (reference - only_first).abs().max() > 1e-2
    torch.testing.assert_close(logits(merged(out)), reference, atol=1e-5, rtol=0)
    assert not (out / REPORT).read_text().count('"output"')  # export_verify: false checks nothing


def test_tokenizer_template_and_stop_ids_saved(tiny_model_dir: Path, make_adapter: Callable[..., Path],
                                               tmp_path: Path) -> None:
    from transformers import AutoTokenizer, GenerationConfig

    out = tmp_path / "export"
    export(config(model_name_or_path=tiny_model_dir, adapter_name_or_path=make_adapter(), export_dir=out,
                  template="qwen", export_verify=False))
    tokenizer = AutoTokenizer.from_pretrained(out)
    messages = [{"role": "user", "content": "Hello there"}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert "<|im_start|>system\nYou are Qwen" in text  # the qwen template, not the folder's plain ChatML
    generation = GenerationConfig.from_pretrained(out)
    eos = generation.eos_token_id if isinstance(generation.eos_token_id, list) else [generation.eos_token_id]
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in eos
    assert generation.pad_token_id == tokenizer.pad_token_id


@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_export_dtype_casts_after_merging(tiny_model_dir: Path, make_adapter: Callable[..., Path], tmp_path: Path,
                                          dtype: str) -> None:
    out = tmp_path / "export"
    report = export(config(model_name_or_path=tiny_model_dir, adapter_name_or_path=make_adapter(), export_dir=out,
                           export_dtype=dtype, export_verify=False))
    assert report.dtype == dtype
    assert json.loads((out / "config.json").read_text())["dtype"] == dtype


def test_infer_dtype_is_honoured_and_export_dtype_wins(tiny_model_dir: Path, make_adapter: Callable[..., Path],
                                                       tmp_path: Path) -> None:
    adapter = make_adapter()
    keys = {"model_name_or_path": tiny_model_dir, "adapter_name_or_path": adapter, "export_verify": False}
    assert export(config(**keys, export_dir=tmp_path / "a", infer_dtype="float16")).dtype == "float16"
    assert export(config(**keys, export_dir=tmp_path / "b", infer_dtype="float16",
                         export_dtype="float32")).dtype == "float32"


def test_shards_and_legacy_format(tiny_model_dir: Path, make_adapter: Callable[..., Path], tmp_path: Path) -> None:
    adapter = make_adapter()
    reference = logits(base_with_adapters(tiny_model_dir, [adapter]))
    out = tmp_path / "bin"
    export(config(model_name_or_path=tiny_model_dir, adapter_name_or_path=adapter, export_dir=out,
                  export_size=0.00005, export_legacy_format=True, export_verify=False))
    shards = sorted(p.name for p in out.glob("pytorch_model-*.bin"))
    assert len(shards) > 1 and not list(out.glob("*.safetensors"))
    assert (out / "pytorch_model.bin.index.json").is_file()
    torch.testing.assert_close(logits(merged(out)), reference, atol=1e-5, rtol=0)


def test_full_run_is_exported_as_it_is(tiny_model_dir: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_model_dir, run)
    out = tmp_path / "export"
    export(config(model_name_or_path="missing-base-is-not-needed", finetuning_type="full", output_dir=run,
                  export_dir=out, export_verify=False))
    torch.testing.assert_close(logits(merged(out)), logits(merged(tiny_model_dir)), atol=0, rtol=0)


def test_adapter_the_run_saved_in_output_dir(tiny_model_dir: Path, make_adapter: Callable[..., Path],
                                             tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = make_adapter("run")
    out = tmp_path / "export"
    report = export(config(model_name_or_path=tiny_model_dir, output_dir=run, export_dir=out, export_verify=False))
    assert report.adapters == [str(run)]
    torch.testing.assert_close(logits(merged(out)), logits(base_with_adapters(tiny_model_dir, [run])), atol=1e-5,
                               rtol=0)
    assert capsys.readouterr().err.count(f"using the adapter trained in {run}") == 1
