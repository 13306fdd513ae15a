"""Modelfile text: written with values quoted so that Ollama reads them back unchanged, and read back the way
Ollama's parser (ollama/parser/parser.go, ParseFile) reads it, so the check renders what Ollama will see.

Ollama's parser keeps only printable characters (Go's strconv.IsPrint, plus newline and tab) and ends a
triple-quoted value at the first `\"\"\"` followed by a space or newline, so TEMPLATE text never holds those: the
Go template writes such characters as string-literal actions (`{{ "\\x1f" }}`), and a SYSTEM text that would need
them is an ExportError.
"""

from __future__ import annotations

from tunelab.export.errors import ExportError

COMMANDS = ("from", "license", "template", "system", "adapter", "draft", "renderer", "parser", "parameter",
            "message", "requires")


def template_text(text: str) -> str:
    """Literal text as Go template source that survives the Modelfile: `{{`, quotes and unprintables escaped."""
    out, quotes = [], 0
    for char in text:
        if char == '"':
            quotes += 1
            out.append('{{ "\\"" }}' if quotes >= 2 else char)  # never two quotes in a row: no `"""` can form
            continue
        quotes = 0
        if char == "{" and out and out[-1] == "{":
            out[-1] = '{{ "{{" }}'
        elif char in "\n\t" or char.isprintable():
            out.append(char)
        else:
            out.append('{{ "\\u%04x" }}' % ord(char) if ord(char) < 0x10000 else '{{ "\\U%08x" }}' % ord(char))
    if out and out[-1] == "{":  # a last brace would make `{{{` with the action that follows
        out[-1] = '{{ "{" }}'
    return "".join(out)


def check_quotable(what: str, text: str) -> None:
    """A SYSTEM or FROM value Ollama would read back changed is an ExportError naming the character."""
    for position, char in enumerate(text):
        if not (char in "\n\t" or char.isprintable()):
            raise ExportError(f"{what} has the unprintable character {char!r} at position {position}, which "
                              f"Ollama's Modelfile parser drops; remove it")
    if '"""' in text or text.endswith('"'):
        raise ExportError(f'{what} contains """ or ends with a quote, which a Modelfile cannot hold; reword it')


def format_modelfile(gguf_name: str, template: str, system: str, stops: list[str]) -> str:
    """The Modelfile text: FROM, TEMPLATE, SYSTEM (when not empty) and one PARAMETER stop per stop string."""
    check_quotable("the GGUF file name", gguf_name)
    if "\n" in gguf_name or gguf_name.startswith('"'):
        raise ExportError(f"the GGUF file name {gguf_name!r} cannot be written on a FROM line; rename it")
    lines = ["# Written by tunelab export; create the model with: ollama create NAME -f Modelfile", "",
             f"FROM ./{gguf_name}", "", f'TEMPLATE """{template}"""', ""]
    if system:
        check_quotable("the system prompt (SYSTEM)", system)
        lines += [f'SYSTEM """{system}"""', ""]
    for stop in stops:
        if '"' in stop or "\n" in stop or not stop.isprintable():
            raise ExportError(f"stop string {stop!r} cannot be written as PARAMETER stop; it holds a quote, a "
                              f"newline or an unprintable character")
        lines.append(f'PARAMETER stop "{stop}"')
    return "\n".join(lines) + "\n"


def unquote(value: str) -> tuple[str, bool]:
    """Ollama's unquote: triple- or double-quoted values lose their quotes; False while a quote is still open."""
    if value.startswith('"""'):
        return (value[3:-3], True) if len(value) >= 6 and value.endswith('"""') else ("", False)
    if value.startswith('"'):
        return (value[1:-1], True) if len(value) >= 2 and value.endswith('"') else ("", False)
    return value, True


def next_state(char: str, state: str) -> tuple[str, str]:
    """Ollama's parseRuneForState: the next state and the character to keep ("" for none)."""
    space, newline = char in " \t", char in "\r\n"
    if state == "nil":
        return ("comment", "") if char == "#" else ("nil", "") if space or newline else ("name", char)
    if state == "name":
        if char.isascii() and char.isalpha():
            return "name", char
        if space:
            return "value", ""
    elif state == "value":
        return ("nil", char) if space or newline else ("value", char)
    elif state in ("parameter", "message"):
        if char.isascii() and (char.isalnum() or (char == "_" and state == "parameter")):
            return state, char
        if space:
            return "value", ""
    elif state == "comment":
        return ("nil", "") if newline else ("comment", "")
    raise ExportError(f"the Modelfile does not parse: unexpected {char!r} while reading a {state}")


def parse_modelfile(text: str) -> list[tuple[str, str]]:
    """The commands of a Modelfile as Ollama's parser reads them: (name, value), FROM named "model"."""
    commands: list[tuple[str, str]] = []
    state, buffer, name, role = "nil", "", "", ""
    for char in text:
        new, keep = next_state(char, state)
        if new != state:
            if state == "name":
                if buffer.lower() not in COMMANDS:
                    raise ExportError(f"the Modelfile does not parse: unknown command {buffer!r}")
                name = "model" if buffer.lower() == "from" else buffer.lower()
                new = {"parameter": "parameter", "message": "message"}.get(name, new)
            elif state == "parameter":
                name = buffer
            elif state == "message":
                role = buffer
            elif state == "value":
                value, done = unquote(buffer.strip())
                if not done or char in " \t":
                    buffer += keep
                    continue
                commands.append((name, f"{role}: {value}" if role else value))
                role = ""
            buffer, state = "", new
        if keep.isprintable() and keep:
            buffer += keep
    if state == "value":
        value, done = unquote(buffer.strip())
        if not done:
            raise ExportError("the Modelfile does not parse: a quoted value is not closed")
        commands.append((name, value))
    return commands
