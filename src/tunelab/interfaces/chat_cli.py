"""Terminal chat: one-shot answers, base-vs-fine-tuned comparison, and an interactive REPL."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from tunelab.config.schema import InferSection
from tunelab.infer.chat import ChatEngine
from tunelab.runtime.override import override_value

REPL_HELP = ("commands: /system TEXT (set the system prompt; /system alone clears it), /clear (forget the "
             "conversation), /retry (answer the last prompt again), /save FILE (write the conversation as JSON), "
             "/set key=value (temperature, top_p, top_k, max_new_tokens, repetition_penalty, do_sample, seed), "
             "/exit; Ctrl-C stops an answer, Ctrl-D exits")


def messages_for(prompt: str, system: str | None, history: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
    """The message list for a user prompt."""
    head = [{"role": "system", "content": system}] if system else []
    return head + (history or []) + [{"role": "user", "content": prompt}]


def one_shot(engine: ChatEngine, prompts: list[str], system: str | None) -> int:
    """Print one answer per prompt."""
    for prompt in prompts:
        if len(prompts) > 1:
            print(f"> {prompt}")
        print(engine.chat(messages_for(prompt, system)))
    return 0


def compare(engine: ChatEngine, prompts: list[str], system: str | None) -> int:
    """Answer each prompt with the base model and with the fine-tuned one."""
    if not prompts:
        print("tunelab chat --compare: give at least one --prompt", file=sys.stderr)
        return 2
    if not engine.has_adapter:
        print("tunelab chat --compare: no adapter to compare with (train first, or set adapter_name_or_path)",
              file=sys.stderr)
        return 1
    for prompt in prompts:
        with engine.without_adapter():
            base = engine.chat(messages_for(prompt, system))
        tuned = engine.chat(messages_for(prompt, system))
        print(f"\n>>> {prompt}\n  base model : {base}\n  fine-tuned : {tuned}")
    return 0


@dataclass
class Session:
    """The conversation of a REPL: system prompt and user/assistant turns."""

    system: str | None = None
    history: list[dict[str, str]] = field(default_factory=list)

    def messages(self) -> list[dict[str, str]]:
        """Everything said so far, system first."""
        return messages_for("", self.system, self.history)[:-1]


def answer(engine: ChatEngine, session: Session, prompt: str) -> None:
    """Stream an answer to prompt and add both turns to the session (a stopped answer is kept as far as it got)."""
    print("assistant> ", end="", flush=True)
    pieces: list[str] = []
    try:
        for piece in engine.stream(messages_for(prompt, session.system, session.history)):
            print(piece, end="", flush=True)
            pieces.append(piece)
    except KeyboardInterrupt:
        print(" [stopped]", end="")
    print()
    session.history += [{"role": "user", "content": prompt}, {"role": "assistant", "content": "".join(pieces).strip()}]


def set_option(engine: ChatEngine, assignment: str) -> str:
    """Apply `/set key=value` to the engine's generation settings; returns what to tell the user."""
    key, sep, raw = assignment.partition("=")
    key = key.strip()
    if not sep or not key:
        return "usage: /set key=value, e.g. /set temperature=0.7"
    value = override_value(raw.strip())
    if key == "seed":
        if not isinstance(value, int):
            return f"seed: expected a whole number, got {raw.strip()!r}"
        engine.seed = value
        return f"seed = {value}"
    if key not in InferSection.model_fields:
        return f"{key}: not a generation setting; one of: {', '.join(InferSection.model_fields)}, seed"
    try:
        engine.settings = InferSection(**{**engine.settings.model_dump(), key: value})
    except ValidationError as exc:
        return f"{key}: {exc.errors()[0]['msg'].lower()} (got {raw.strip()!r})"
    return f"{key} = {getattr(engine.settings, key)}"


def command(engine: ChatEngine, session: Session, line: str) -> bool:
    """Run one /command; False when the REPL should end."""
    name, _, argument = line.partition(" ")
    argument = argument.strip()
    if name in ("/exit", "/quit"):
        return False
    if name == "/clear":
        session.history.clear()
        note("(conversation cleared)")
    elif name == "/system":
        session.system = argument or None
        note(f"(system prompt {'set' if argument else 'cleared'})")
    elif name == "/retry":
        if not session.history:
            note("(nothing to retry yet)")
        else:
            prompt = session.history[-2]["content"]
            del session.history[-2:]
            answer(engine, session, prompt)
    elif name == "/save":
        if not argument:
            note("usage: /save FILE")
        else:
            Path(argument).write_text(json.dumps({"messages": session.messages()}, ensure_ascii=False, indent=1),
                                      encoding="utf-8")
            note(f"(saved {len(session.history)} messages to {argument})")
    elif name == "/set":
        note(set_option(engine, argument))
    else:
        note(f"unknown command {name}; {REPL_HELP}")
    return True


def note(text: str) -> None:
    """A REPL message (stderr, so that stdout holds only the answers)."""
    print(text, file=sys.stderr)


def repl(engine: ChatEngine, system: str | None) -> int:
    """Read prompts until /exit or end of input; answers stream as they are generated."""
    session = Session(system=system)
    note(REPL_HELP)
    while True:
        try:
            line = input("\nuser> ").strip()
        except EOFError:
            return 0
        except KeyboardInterrupt:
            note("\n(type /exit or press Ctrl-D to leave)")
            continue
        if line.startswith("/"):
            if not command(engine, session, line):
                return 0
        elif line:
            answer(engine, session, line)
