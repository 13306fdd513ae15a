"""The Ollama Modelfile: a Go TEMPLATE proven to render the prompts the model's Jinja chat template renders.

The Go template is built from the Jinja template's own renderings (chat_shape.py). Before anything is written,
the Modelfile text is read back as Ollama's parser reads it (modelfile.py), and its TEMPLATE is executed (go_render)
for sample conversations the way Ollama's chat endpoint does: the Modelfile's SYSTEM put first when a conversation
has no system message, `.System` and `.Messages` as Ollama's template.Execute passes them. Each rendering must equal
the Jinja rendering of the conversation the run trained on (add_generation_prompt=True, after the BOS rule);
the first difference is an ExportError naming the conversation and the position, with both texts around it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tunelab.data.chat_template import composed_jinja, load_named, template_names
from tunelab.export.chat_shape import MARKS, ChatShape, Message, jinja_prompt, msg, read_shape, try_render
from tunelab.export.errors import ExportError
from tunelab.export.go_render import render
from tunelab.export.go_template import GoTemplateError
from tunelab.export.modelfile import format_modelfile, parse_modelfile, template_text

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

SAMPLES: list[tuple[str, list[Message]]] = [
    ("one user turn", [msg("user", "What is the capital of France?")]),
    ("system, user, assistant, user", [msg("system", "You are a careful assistant."), msg("user", "Hello there!"),
                                       msg("assistant", "Hello! How can I help?"), msg("user", "Who are you?")]),
    ("three user turns without system", [msg("user", "Translate to French: cat"), msg("assistant", "chat"),
                                         msg("user", "dog"), msg("assistant", "chien"), msg("user", "bird")]),
    ("Chinese with a system message", [msg("system", "你是一个乐于助人的助手。"), msg("user", "法国的首都是哪里？"),
                                       msg("assistant", "巴黎。"), msg("user", "谢谢！")]),
    ("Chinese without a system message", [msg("user", "你好，你是谁？")]),
    ("empty system and user contents", [msg("system", ""), msg("user", "")]),
    ("empty assistant turn", [msg("user", ""), msg("assistant", ""), msg("user", "again")]),
    ("whitespace around contents", [msg("user", "  spaces around \n"),
                                    msg("assistant", "\nline one\n  indented\n"),
                                    msg("user", "\ttab and newline\n\n")]),
    ("template syntax in contents", [msg("system", 'say "{{ .System }}" and {% raw %}'),
                                     msg("user", '{{- range .Messages }}"""{{ end }} {# #}')]),
]

TRIM_HINT = ("\n  The chat template changes the whitespace around message contents (Jinja's `| trim`), which an Ollama "
             "template cannot do: Ollama would send the model text it never saw in training. Train with a tunelab "
             "template that keeps contents as they are (template: NAME, see `tunelab templates`) to export to Ollama.")


def user_branch(shape: ChatShape) -> str:
    """The user turn: the head when it opens the conversation, then the gap to the answer or the prompt."""
    head = f"{{{{ if eq $i 0 }}}}{template_text(shape.head_user)}{{{{ end }}}}" if shape.head_user else ""
    # Every line ends in an action: the next line's `{{-` would trim the newlines a literal ends with.
    after = f"{{{{ if $last }}}}{template_text(shape.tail)}{{{{ else }}}}{template_text(shape.user_gap)}{{{{ end }}}}"
    return f'{{{{- else if eq .Role "user" }}}}{head}{{{{ .Content }}}}{after}\n'


def system_branch(shape: ChatShape, empty_head: str) -> str:
    """The system turn (first message only): its head, content and the gap to the first user turn. A template
    without a system role drops it, as Ollama cannot refuse it: the conversation's head is written there."""
    if shape.head_system is None:
        head = f"{{{{ if eq $i 0 }}}}{template_text(shape.head_user)}{{{{ end }}}}" if shape.head_user else ""
        return f'{{{{- if eq .Role "system" }}}}{head}\n'
    full = f"{template_text(shape.head_system)}{{{{ .Content }}}}{template_text(shape.system_gap)}"
    if empty_head != shape.head_system + shape.system_gap:
        full = f"{{{{ if .Content }}}}{full}{{{{ else }}}}{template_text(empty_head)}{{{{ end }}}}"
    return f'{{{{- if eq .Role "system" }}}}{{{{ if eq $i 0 }}}}{full}{{{{ end }}}}\n'


def go_template_for(shape: ChatShape, empty_head: str) -> str:
    """The Ollama TEMPLATE for a chat shape (system at the start, then alternating user and assistant)."""
    system = system_branch(shape, empty_head)
    user = user_branch(shape)
    assistant_gap = f"{{{{ if not $last }}}}{template_text(shape.assistant_gap)}{{{{ end }}}}" \
        if shape.assistant_gap else ""
    return ("{{- range $i, $_ := .Messages }}\n{{- $last := eq (len (slice $.Messages $i)) 1 }}\n"
            f"{system}{user}"
            f'{{{{- else if eq .Role "assistant" }}}}{{{{ .Content }}}}{assistant_gap}\n'
            "{{- end }}\n{{- end }}")


def stop_strings(tokenizer: PreTrainedTokenizerBase, shape: ChatShape, declared: tuple[str, ...] = ()) -> list[str]:
    """The end-of-turn token the template writes after an answer (the first special token there), EOS, then the
    stop words a named tunelab template declares."""
    special = set(tokenizer.all_special_tokens)
    special |= {token.content for token in tokenizer.added_tokens_decoder.values() if token.special}
    found = sorted((shape.assistant_gap.find(token), -len(token), token)
                   for token in special if token and token in shape.assistant_gap)
    stops = [found[0][2]] if found else []
    for stop in (tokenizer.eos_token, *declared):
        if stop and stop not in stops:
            stops.append(stop)
    return stops


def ollama_values(conversation: list[Message], system: str) -> dict:
    """What Ollama's template sees for a chat request: SYSTEM put first when no system message leads, then its
    collate (system texts joined, same-role neighbours merged)."""
    messages = [dict(m) for m in conversation]
    if system and (not messages or messages[0]["role"] != "system"):
        messages.insert(0, msg("system", system))
    collated: list[dict] = []
    for m in messages:
        if collated and collated[-1]["Role"] == m["role"] and m["role"] != "tool":
            collated[-1]["Content"] += "\n\n" + m["content"]
        else:
            collated.append({"Role": m["role"], "Content": m["content"], "Thinking": "", "ToolName": "",
                             "ToolCalls": [], "Images": []})
    system_text = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    return {"System": system_text, "Messages": collated, "Tools": [], "Response": "", "Think": False,
            "IsThinkSet": False}


def first_difference(conversation: str, got: str, want: str) -> str:
    """Where two renderings first differ, with both texts around that position."""
    index = next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))
    start = max(0, index - 40)
    return (f"conversation '{conversation}': the Ollama TEMPLATE and the Jinja template differ at character "
            f"{index}\n  Ollama: {got[start:index + 40]!r}\n  Jinja:  {want[start:index + 40]!r}")


def check_modelfile(text: str, tokenizer: PreTrainedTokenizerBase, default_system: str | None,
                    system_role: bool) -> list[str]:
    """The differences between Ollama's rendering of the Modelfile and the Jinja renderings (empty: none)."""
    commands = dict(parse_modelfile(text))
    template, system = commands.get("template", ""), commands.get("system", "")
    problems = []
    for name, conversation in SAMPLES:
        has_system = conversation[0]["role"] == "system"
        trained = conversation if has_system or default_system is None else \
            [msg("system", default_system), *conversation]
        if not system_role:  # the template has no system role: what the model saw is the rest of the conversation
            trained = [m for m in conversation if m["role"] != "system"]
        want = jinja_prompt(tokenizer, trained)
        try:
            got = render(template, ollama_values(conversation, system))
        except GoTemplateError as error:
            problems.append(f"conversation '{name}': the TEMPLATE does not execute: {error}")
            continue
        if got != want:
            problems.append(first_difference(name, got, want))
    return problems


def named_template(tokenizer: PreTrainedTokenizerBase) -> str | None:
    """The name of the shipped tunelab template the tokenizer carries, if it carries one."""
    return next((name for name in template_names() if tokenizer.chat_template == composed_jinja(name)), None)


def template_label(name: str | None, tokenizer: PreTrainedTokenizerBase) -> str:
    """How errors name the chat template: tunelab's template name, else the tokenizer's source."""
    return f"chat template '{name}'" if name else f"the chat template of {tokenizer.name_or_path or 'the tokenizer'}"


def build_modelfile(gguf_name: str, tokenizer: PreTrainedTokenizerBase, default_system: str | None) -> str:
    """The checked Modelfile text; ExportError when the chat template cannot be expressed as an Ollama TEMPLATE."""
    name = named_template(tokenizer)
    label = template_label(name, tokenizer)
    shape = read_shape(tokenizer, label, default_system)
    system = default_system if default_system is not None else shape.default_system
    if system and shape.head_system is None:
        raise ExportError(f"{label} has no system role, so the system prompt {system!r} cannot be given to Ollama; "
                          f"leave default_system out or use a template with a system role")
    empty = try_render(tokenizer, [msg("system", ""), msg("user", MARKS["user1"])]) or ""
    empty_head = empty.split(MARKS["user1"], 1)[0]  # what an empty system message leaves before the first user turn
    declared = load_named(name).options.stop_words if name else ()
    stops = stop_strings(tokenizer, shape, declared)
    text = format_modelfile(gguf_name, go_template_for(shape, empty_head), system, stops)
    problems = check_modelfile(text, tokenizer, default_system, shape.head_system is not None)
    if problems:
        hint = TRIM_HINT if any("'whitespace around contents'" in p for p in problems) else ""
        raise ExportError(f"{label} cannot be expressed as an Ollama TEMPLATE; the checked rendering differs:\n"
                          + "\n".join(problems) + hint)
    return text


def write_modelfile(folder: Path, gguf_name: str, tokenizer: PreTrainedTokenizerBase,
                    default_system: str | None) -> Path:
    """Write folder/Modelfile (FROM the GGUF, the checked TEMPLATE, SYSTEM, stops) and return its path."""
    text = build_modelfile(gguf_name, tokenizer, default_system)
    path = folder / "Modelfile"
    partial = folder / "Modelfile.partial"
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
    return path

