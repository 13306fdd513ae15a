"""Several named LoRA adapters served on one base model: the `name=path,...` list, the checks that every adapter
fits the base (its shapes, its vocabulary, its chat template) before any weight loads, and their names."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tunelab.model.adapters import AdapterError
from tunelab.model.errors import ModelError
from tunelab.model.preflight import check_adapters, read_json_object

# PEFT keeps adapters in torch ModuleDicts, whose keys cannot hold a dot; clients send the name as a model id
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-]*")
RESERVED = ("__base__",)  # PEFT's name for "no adapter" in a mixed batch
FLAG = "--adapters"


@dataclass(frozen=True)
class NamedAdapter:
    """One adapter to serve: the model id clients ask for, and its folder."""

    name: str
    path: Path

    def where(self) -> str:
        """How the user wrote it, for error messages."""
        return f"{FLAG} {self.name}={self.path}"


def parse_adapters(spec: str) -> list[NamedAdapter]:
    """`name=path,name2=path2` as named adapters; a malformed, badly named or repeated entry is an AdapterError."""
    adapters: list[NamedAdapter] = []
    for entry in (part.strip() for part in spec.split(",")):
        if not entry:
            continue
        name, sep, path = (part.strip() for part in entry.partition("="))
        if not sep or not name or not path:
            raise AdapterError(f"{FLAG}: '{entry}' is not name=path; write e.g. {FLAG} sql=saves/sql,chat=saves/chat")
        if not NAME.fullmatch(name) or name in RESERVED:
            raise AdapterError(f"{FLAG}: '{name}' cannot name an adapter; use letters, digits, '-' and '_' (no dots "
                               f"or slashes), starting with a letter or digit, and not {', '.join(RESERVED)}")
        if any(a.name == name for a in adapters):
            raise AdapterError(f"{FLAG}: the name '{name}' is given twice; give each adapter its own name")
        adapters.append(NamedAdapter(name, Path(path)))
    if not adapters:
        raise AdapterError(f"{FLAG}: no adapter given; write e.g. {FLAG} sql=saves/sql,chat=saves/chat")
    return adapters


def check_names(adapters: list[NamedAdapter], base_id: str) -> None:
    """No adapter may take the base model's id: that id answers with the base model alone."""
    for adapter in adapters:
        if adapter.name == base_id:
            raise AdapterError(f"{adapter.where()}: '{base_id}' is the base model's id, which answers without any "
                               "adapter; give the adapter another name")


def check_fit(base_dir: Path, adapters: list[NamedAdapter]) -> None:
    """Each adapter folder complete and its LoRA shapes fitting the base weights; the error names the adapter."""
    for adapter in adapters:
        try:
            check_adapters(base_dir, [adapter.path])
        except ModelError as exc:
            raise ModelError(f"{adapter.where()}: {exc}") from None


def saved_tokenizer(adapter: NamedAdapter) -> Path | None:
    """The adapter's folder when a run saved its tokenizer (and chat template) there."""
    return adapter.path if (adapter.path / "tokenizer_config.json").is_file() else None


def base_vocab(base_dir: Path) -> int | None:
    """The base model's vocabulary size from its config.json (None when it does not say)."""
    config = base_dir / "config.json"
    if not config.is_file():
        return None
    size = read_json_object(config, "use a complete model folder").get("vocab_size")
    return size if isinstance(size, int) else None


def check_tokenizers(reference: Path, adapters: list[NamedAdapter], vocab: int | None, check_template: bool,
                     trust_remote_code: bool = False) -> None:
    """Every adapter that saved a tokenizer must share the vocabulary (and, unless the config's template: names
    one for all, the chat template) of the tokenizer in reference, which renders every request, and fit the base
    model's vocabulary."""
    from transformers import AutoTokenizer

    served = AutoTokenizer.from_pretrained(reference, trust_remote_code=trust_remote_code)
    for adapter in adapters:
        folder = saved_tokenizer(adapter)
        if folder is None:
            continue
        own = served if folder == reference else AutoTokenizer.from_pretrained(folder,
                                                                              trust_remote_code=trust_remote_code)
        if vocab is not None and len(own) > vocab:
            raise ModelError(f"{adapter.where()}: its tokenizer has {len(own)} tokens but the base model's vocabulary "
                             f"is {vocab} (trained on another model, or with added tokens?); serve it on the model "
                             "it was trained on")
        if own.get_vocab() != served.get_vocab():
            raise ModelError(f"{adapter.where()}: its tokenizer's vocabulary differs from the served one in "
                             f"{reference} ({len(own)} tokens, not {len(served)}); serve adapters trained on the "
                             "same model and tokenizer together")
        if check_template and own.chat_template != served.chat_template:
            raise ModelError(f"{adapter.where()}: its chat template differs from the served one in {reference}; "
                             "serve adapters trained with the same template together, or set template: NAME to "
                             "render every request with one")
