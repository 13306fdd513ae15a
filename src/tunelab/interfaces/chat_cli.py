"""Terminal chat: one-shot answers, base-vs-fine-tuned comparison, and a simple REPL."""

from __future__ import annotations

import sys

from tunelab.infer.hf_engine import HFEngine

REPL_HELP = "commands: /clear (forget the conversation), /exit"


def messages_for(prompt: str, system: str | None, history: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
    """The message list for a user prompt."""
    head = [{"role": "system", "content": system}] if system else []
    return head + (history or []) + [{"role": "user", "content": prompt}]


def one_shot(engine: HFEngine, prompts: list[str], system: str | None) -> int:
    """Print one answer per prompt."""
    for prompt in prompts:
        if len(prompts) > 1:
            print(f"> {prompt}")
        print(engine.chat(messages_for(prompt, system)))
    return 0


def compare(engine: HFEngine, prompts: list[str], system: str | None) -> int:
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


def repl(engine: HFEngine, system: str | None) -> int:
    """Read prompts until /exit or end of input; answers stream as they are generated."""
    history: list[dict[str, str]] = []
    print(REPL_HELP, file=sys.stderr)
    while True:
        try:
            prompt = input("\nuser> ").strip()
        except EOFError:
            return 0
        if prompt in ("/exit", "/quit"):
            return 0
        if prompt == "/clear":
            history.clear()
            print("(conversation cleared)", file=sys.stderr)
            continue
        if not prompt:
            continue
        print("assistant> ", end="", flush=True)
        pieces = []
        for piece in engine.stream(messages_for(prompt, system, history)):
            print(piece, end="", flush=True)
            pieces.append(piece)
        print()
        history += [{"role": "user", "content": prompt}, {"role": "assistant", "content": "".join(pieces).strip()}]
