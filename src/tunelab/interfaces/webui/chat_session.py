"""The Chat tab's model: one ChatEngine per UI, loaded from the top bar (model + run folder + more adapters),
answers streamed through infer/chat.py's engine, base and tuned side by side through ChatEngine.without_adapter."""

from __future__ import annotations

import argparse
import contextlib
import gc
import threading
from pathlib import Path
from collections.abc import Iterator
from dataclasses import dataclass, field

from pydantic import ValidationError

from tunelab.config.schema import InferSection
from tunelab.infer.chat import ChatEngine
from tunelab.interfaces.chat_cli import messages_for
from tunelab.interfaces.webui.cli_capture import Captured, capture, cli_runner
from tunelab.interfaces.webui.top_config import adapter_list, model_keys, run_folder

Message = dict[str, str]


@dataclass(frozen=True)
class LoadForm:
    """What to load: the top bar's model, template, method and run folder, plus more adapter folders."""

    model: str
    template: str | None
    finetuning_type: str | None
    run_dir: str | None
    extra_adapters: str | None = None
    workdir: Path = field(default_factory=Path.cwd)  # relative folders are read from here, and may not leave it


def settings_from(base: InferSection, max_new_tokens: float, temperature: float, top_p: float,
                  do_sample: bool) -> InferSection | str:
    """The generation settings from the form, or the problem with them (as `/set` in the terminal says it)."""
    try:
        return InferSection(**{**base.model_dump(), "max_new_tokens": int(max_new_tokens),
                               "temperature": temperature, "top_p": top_p, "do_sample": do_sample})
    except ValidationError as exc:
        error = exc.errors()[0]
        return f"{error['loc'][0]}: {error['msg'].lower()} (got {error['input']!r})"


def history_messages(history: list[Message]) -> list[Message]:
    """A chatbot's history as plain user/assistant messages (the chatbot adds keys of its own)."""
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in history
            if m.get("role") in ("user", "assistant")]


class ChatSession:
    """The loaded engine (at most one per UI) and what it was loaded from."""

    def __init__(self) -> None:
        self.engine: ChatEngine | None = None
        self.loaded: str = ""
        self.lock = threading.Lock()

    def load(self, form: LoadForm, settings: InferSection) -> Captured:
        """Load the model (unloading the one before), as `tunelab chat` loads it; the CLI's error text on failure."""
        from tunelab.config.load import build
        from tunelab.infer.load import load_for_inference
        from tunelab.runtime.logging import quiet_libraries

        def handler(_: argparse.Namespace) -> int:
            folder = run_folder(form.run_dir, required=False, workdir=form.workdir)
            keys = {**model_keys(form.model, form.template, form.finetuning_type), **settings.model_dump()}
            if folder is not None:
                keys["output_dir"] = str(folder)
            if form.extra_adapters and form.extra_adapters.strip():
                keys["adapter_name_or_path"] = adapter_list(folder, form.extra_adapters, form.workdir)
            config = build(keys, "infer")
            quiet_libraries()
            self.unload()
            self.engine = ChatEngine(load_for_inference(config), config.infer, seed=config.train.seed)
            adapters = config.model.adapter_name_or_path or (str(folder) if self.engine.has_adapter else "")
            self.loaded = config.model.model_name_or_path + (f" + {adapters}" if adapters else "")
            print(f"loaded {self.loaded}")
            return 0

        with self.lock:
            return capture(handler, argparse.Namespace(), cli_runner)

    def unload(self) -> str:
        """Free the model; what the status line says afterwards."""
        if self.engine is not None:
            self.engine.engine.stop()
            self.engine = None
            self.loaded = ""
            gc.collect()
            return "unloaded"
        return "no model loaded"

    @property
    def has_adapter(self) -> bool:
        """True when an adapter is loaded (side by side needs one)."""
        return self.engine is not None and self.engine.has_adapter

    def stream(self, history: list[Message], prompt: str, system: str | None,
               base: bool = False) -> Iterator[list[Message]]:
        """The history with the prompt and the answer so far, after each piece; base=True answers without adapters."""
        if self.engine is None:
            raise RuntimeError("no model loaded")
        engine = self.engine
        messages = messages_for(prompt, system or None, history_messages(history))
        shown = history_messages(history) + [{"role": "user", "content": prompt}, {"role": "assistant", "content": ""}]
        with engine.without_adapter() if base else contextlib.nullcontext():
            for piece in engine.stream(messages):
                shown[-1] = {"role": "assistant", "content": shown[-1]["content"] + piece}
                yield shown
        shown[-1] = {"role": "assistant", "content": shown[-1]["content"].strip()}
        yield shown

    def stream_pair(self, base: list[Message], tuned: list[Message], prompt: str,
                    system: str | None) -> Iterator[tuple[list[Message], list[Message]]]:
        """The same prompt answered by the base model, then by the tuned one, each streamed."""
        base_now = base
        for base_now in self.stream(base, prompt, system, base=True):
            yield base_now, tuned
        for tuned_now in self.stream(tuned, prompt, system):
            yield base_now, tuned_now
