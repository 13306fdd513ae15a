"""Shared fixtures: a tiny byte-level BPE tokenizer with a ChatML template and a 2-layer Llama, built in-process."""

from __future__ import annotations

import faulthandler
import json
import os
from types import ModuleType, SimpleNamespace
from pathlib import Path
from typing import Any

import pytest

# Tests never reach a hub: the libraries read these once, at import, so they are set before any test imports them
# (a test that set HF_HUB_OFFLINE itself, after datasets was imported, waited 23 s on a network timeout).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"

# A crash of the test process itself (a fatal signal: SIGSEGV, SIGBUS) is dumped to this file, which `make test`
# prints after a failed run: on stderr the innermost frames (the test that crashed) scroll out of a log's tail.
CRASH_LOG = Path(__file__).resolve().parent.parent / ".pytest-crash.log"


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Send fatal-signal tracebacks to CRASH_LOG (after pytest's own faulthandler set-up, so this one wins)."""
    if getattr(config, "workerinput", None) is None:
        config.stash[CRASH_STASH] = CRASH_LOG.open("w")
        faulthandler.enable(file=config.stash[CRASH_STASH], all_threads=False)


CRASH_STASH = pytest.StashKey[Any]()

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# Words the tests use, so that the trained merges give multi-byte tokens (and merges across them are possible).
CORPUS = [
    "system user assistant",
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face.",
    "What is the capital of France? Paris is the capital of France.",
    "Hello there, how are you? I am fine, thanks.",
    "Who are you? I am tunelab, a small model trained on a tiny set.",
    "Answer in one word. Translate to French: cat chat, dog chien, bird oiseau.",
    "line one\n  indented\n   more indented\n\nnext paragraph",
    "Summarize the text. Give a title. Write a poem about the sea.",
]


@pytest.fixture(scope="session")
def tiny_tokenizer_json() -> str:
    """The serialized `tokenizers` model (trained once per session; deterministic)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(CORPUS, trainer=trainer)
    return tokenizer.to_str()


CHATML = ("{%- for message in messages -%}"
          "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
          "{%- endfor -%}"
          "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}")


def chatml_template() -> str:
    """A plain Hugging Face ChatML template (no default system), as a model would ship it."""
    return CHATML


def make_tokenizer(tokenizer_json: str, chat_template: str | None, pad: bool = True) -> Any:
    """A PreTrainedTokenizerFast around the tiny BPE model."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    kwargs: dict[str, Any] = {"eos_token": "<|im_end|>"}
    if pad:
        kwargs["pad_token"] = "<|endoftext|>"
    if chat_template is not None:
        kwargs["chat_template"] = chat_template
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(tokenizer_json), **kwargs)


@pytest.fixture
def tiny_tokenizer(tiny_tokenizer_json: str) -> Any:
    """A fresh tokenizer per test: ChatML chat template, eos <|im_end|>, pad <|endoftext|>."""
    return make_tokenizer(tiny_tokenizer_json, chatml_template())


def byte_letters(text: str) -> str:
    """The byte-level BPE spelling of a text: one letter per UTF-8 byte."""
    from tokenizers.pre_tokenizers import ByteLevel

    return ByteLevel(add_prefix_space=False, use_regex=False).pre_tokenize_str(text)[0][0]


@pytest.fixture(scope="session")
def cjk_tokenizer_json(tiny_tokenizer_json: str) -> str:
    """The tiny tokenizer with three merges more: 中 spans two tokens (its first two bytes, then its last), and
    U+FFFD (bytes EF BF BD) is one token of its own."""
    spec = json.loads(tiny_tokenizer_json)
    vocab, merges = spec["model"]["vocab"], spec["model"]["merges"]
    zhong, replacement = byte_letters("中"), byte_letters("\ufffd")
    for left, right in [(zhong[0], zhong[1]), (replacement[0], replacement[1]), (replacement[:2], replacement[2])]:
        vocab[left + right] = len(vocab)
        merges.append([left, right])
    return json.dumps(spec)


@pytest.fixture
def cjk_tokenizer(cjk_tokenizer_json: str) -> Any:
    """The tiny tokenizer (ChatML, eos <|im_end|>) where 中 is two tokens and U+FFFD one."""
    return make_tokenizer(cjk_tokenizer_json, chatml_template())


def utf8_answer(tokenizer: Any, ids: list[int]) -> str:
    """What byte-level tokens must read as an answer, by Python's own UTF-8 decoder: special tokens left out,
    invalid bytes as U+FFFD, and a last character the tokens stop inside of left out."""
    import codecs

    from transformers.convert_slow_tokenizer import bytes_to_unicode

    byte_of = {letter: byte for byte, letter in bytes_to_unicode().items()}
    special = {i for i, token in tokenizer.added_tokens_decoder.items() if token.special}
    data = bytes(byte_of[letter] for i in ids if i not in special for letter in tokenizer.convert_ids_to_tokens(i))
    return codecs.getincrementaldecoder("utf-8")(errors="replace").decode(data, final=False)


def scripted(tokenizer: Any, text: str) -> Any:
    """A generate() that answers every request with text (then the stop token), through on_token like the real one."""
    from tunelab.infer.batch_generate import GenResult

    ids = tokenizer(text, add_special_tokens=False)["input_ids"]

    def generate(model: Any, requests: list[Any], pad_id: int, on_token: Any = None) -> list[GenResult]:
        results = []
        for row, request in enumerate(requests):
            out: list[int] = []
            reason = "stop"
            for token in ids[:request.max_new_tokens]:
                out.append(token)
                if on_token is not None and on_token(row, token) is False:
                    reason = "cancelled"
                    break
            if reason == "stop" and len(ids) > request.max_new_tokens:
                reason = "length"
            results.append(GenResult(out, reason))
        return results

    return generate


def make_llama(vocab_size: int, seed: int = 0) -> Any:
    """A 2-layer Llama small enough to run forward and backward in milliseconds."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         tie_word_embeddings=False, pad_token_id=0, eos_token_id=2, bos_token_id=None)
    return LlamaForCausalLM(config).eval()


@pytest.fixture
def tiny_llama(tiny_tokenizer: Any) -> Any:
    """A fresh, seeded 2-layer Llama (hidden 32, 4 heads, 2 kv heads) over the tiny tokenizer's vocabulary."""
    return make_llama(len(tiny_tokenizer))


@pytest.fixture
def make_tiny_llama(tiny_tokenizer: Any) -> Any:
    """make_tiny_llama(seed=0): more tiny Llamas (same seed, same weights) when a test needs two."""
    return lambda seed=0: make_llama(len(tiny_tokenizer), seed)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer_json: str) -> Path:
    """A Hugging Face model folder (config.json, weights, tokenizer with chat template); treat as read-only."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    tokenizer = make_tokenizer(tiny_tokenizer_json, chatml_template())
    make_llama(len(tokenizer)).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_dataset(folder: Path, rows: Any, name: str = "demo", file_name: str = "demo.json",
                  entry: dict[str, Any] | None = None, raw: str | bytes | None = None) -> Path:
    """Write a data file (rows as JSON, or raw text/bytes) and register it in folder/dataset_info.json."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file_name
    if isinstance(raw, bytes):
        path.write_bytes(raw)
    elif raw is not None:
        path.write_text(raw, encoding="utf-8")
    else:
        path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    info_path = folder / "dataset_info.json"
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else {}
    info[name] = {"file_name": file_name, **(entry or {})}
    info_path.write_text(json.dumps(info, indent=2), encoding="utf-8")
    return path


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """An empty dataset_dir for a test."""
    return tmp_path / "data"


@pytest.fixture
def make_dataset(data_dir: Path) -> Any:
    """write_dataset bound to this test's data_dir: make_dataset(rows, name=..., file_name=..., entry=..., raw=...)."""

    def make(rows: Any = None, **kwargs: Any) -> Path:
        return write_dataset(data_dir, rows, **kwargs)

    return make


class Clock:
    """A time.time() the test moves by hand (`clock.now += 5`)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def time(self) -> float:
        return self.now


def patched_clock(monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> Clock:
    """A Clock that the module's `time.time()` reads from now on."""
    fake = Clock()
    monkeypatch.setattr(module, "time", SimpleNamespace(time=fake.time))
    return fake


def reward_head(model: Any, seed: int = 1) -> Any:
    """A ValueHeadModel (no dropout, eval mode) over model with random, non-trivial head weights."""
    import torch

    from tunelab.model.value_head import ValueHeadModel

    torch.manual_seed(seed)
    head = ValueHeadModel(model, dropout=0.0).eval()
    torch.nn.init.normal_(head.v_head.summary.weight)
    torch.nn.init.normal_(head.v_head.summary.bias)
    return head


@pytest.fixture
def lora_rm_dir(tiny_model_dir: Path, tiny_tokenizer: Any, tmp_path: Path) -> tuple[Path, Any]:
    """A LoRA stage rm output folder over tiny_model_dir (random non-zero adapter, value head, tokenizer) and the
    ValueHeadModel it was saved from."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tunelab.model.value_head import save_value_head

    folder = tmp_path / "lora-rm"
    torch.manual_seed(2)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    peft = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    head = reward_head(peft)
    peft.save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    save_value_head(head, folder)
    return folder, head


@pytest.fixture
def full_rm_dir(tiny_tokenizer: Any, tmp_path: Path) -> tuple[Path, Any]:
    """A full/freeze stage rm output folder (model, tokenizer, value head) and the ValueHeadModel saved there."""
    from tunelab.model.value_head import save_value_head

    folder = tmp_path / "full-rm"
    head = reward_head(make_llama(len(tiny_tokenizer), seed=3))
    head.pretrained_model.save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    save_value_head(head, folder)
    return folder, head
