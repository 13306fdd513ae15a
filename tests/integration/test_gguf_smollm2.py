"""The GGUF writer on the real SmolLM2-135M-Instruct folder: the file matches llama.cpp's own conversion of the
model (metadata and every tensor), gives the source model's greedy answers at f16 and q8_0, and tunelab loads it
back as `model_name_or_path: file.gguf`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tunelab.export.gguf import write_gguf
from tunelab.model import registry
from tunelab.model.load import ModelBundle, load_bundle

ALIAS = registry.DEFAULT_MODEL
PROMPTS = ["Who are you?", "What is your name?", "Who created you?"]
# Keys llama.cpp wrote that name the upstream release (organization, licence, ...) rather than the model itself.
PROVENANCE = {"general.basename", "general.finetune", "general.languages", "general.license", "general.name",
              "general.organization", "general.size_label", "general.file_type", "GGUF.kv_count",
              "tokenizer.ggml.add_space_prefix"}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Greedy decoding of a 135M model on a shared 2-core machine: extra OpenMP threads spin far more than they
    help (16 tokens x 3 prompts: 16 s of CPU with 2 threads, 2 s with one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def greedy(tokenizer: Any, model: Any, prompts: list[str]) -> list[str]:
    """Greedy answers (16 new tokens) to one-turn chats, as one left-padded batch."""
    tokenizer.padding_side = "left"
    chats = [[{"role": "user", "content": prompt}] for prompt in prompts]
    batch = tokenizer.apply_chat_template(chats, add_generation_prompt=True, return_tensors="pt", return_dict=True,
                                          padding=True)
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=16, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)


@pytest.fixture(scope="module")
def source() -> tuple[ModelBundle, list[str]]:
    """The packaged model (its converted folder) and its greedy answers."""
    bundle = load_bundle(ALIAS, torch.float32)
    bundle.model.eval()
    return bundle, greedy(bundle.tokenizer, bundle.model, PROMPTS)


@pytest.fixture(scope="module")
def f16_file(source: tuple[ModelBundle, list[str]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The f16 conversion of the packaged model's folder."""
    return write_gguf(source[0].source.path, tmp_path_factory.mktemp("gguf") / "smollm2-f16.gguf", "f16").path


def metadata(path: Path) -> dict[str, Any]:
    from gguf import GGUFReader

    return {key: field.contents() for key, field in GGUFReader(path).fields.items()}


def test_f16_matches_llama_cpps_own_conversion(f16_file: Path) -> None:
    from gguf import GGUFReader, dequantize

    reference = registry.aliases()[ALIAS].gguf_path()
    assert reference is not None
    ours, theirs = metadata(f16_file), metadata(reference)
    assert ours["tokenizer.ggml.pre"] == "smollm"
    differing = {k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k)}
    assert differing - PROVENANCE <= {"tokenizer.ggml.add_eos_token", "tokenizer.ggml.eot_token_id"}
    assert ours["tokenizer.ggml.add_eos_token"] is False and ours["tokenizer.ggml.eot_token_id"] == 2
    # The folder is the dequantized reference, so each tensor must equal llama.cpp's up to f16 rounding: this checks
    # the names, the order, the shapes and the q/k permutation against llama.cpp's converter itself.
    mine, its = GGUFReader(f16_file).tensors, GGUFReader(reference).tensors
    assert [t.name for t in mine] == [t.name for t in its]
    for a, b in zip(mine, its):
        np.testing.assert_allclose(dequantize(a.data, a.tensor_type), dequantize(b.data, b.tensor_type),
                                   rtol=1e-3, atol=1e-6, err_msg=a.name)


def test_f16_gives_the_same_greedy_answers(source: tuple[ModelBundle, list[str]], f16_file: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(f16_file.parent, gguf_file=f16_file.name)
    model = AutoModelForCausalLM.from_pretrained(f16_file.parent, gguf_file=f16_file.name, dtype=torch.float32)
    assert greedy(tokenizer, model.eval(), PROMPTS) == source[1]


def test_q8_0_loads_in_tunelab_with_the_same_greedy_answers(source: tuple[ModelBundle, list[str]], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    bundle, expected = source
    report = write_gguf(bundle.source.path, tmp_path / "smollm2-q8_0.gguf", "q8_0")
    assert report.kept_float == []
    monkeypatch.setenv("TUNELAB_CACHE", str(tmp_path / "cache"))  # the conversion cache of this file, not the user's
    loaded = load_bundle(str(report.path), torch.float32)
    assert loaded.source.kind == "gguf"
    assert loaded.tokenizer.chat_template == bundle.tokenizer.chat_template
    assert greedy(loaded.tokenizer, loaded.model.eval(), PROMPTS) == expected
