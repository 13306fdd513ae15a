"""Parse the subset of Go's text/template that Ollama Modelfile templates use (the renderer is go_render.py).

Ollama renders a Modelfile's TEMPLATE with Go's text/template; tunelab cannot run Go, so it checks the templates it
writes with this parser and renderer. Covered: text and actions with `{{-` / `-}}` trimming, comments, if / else if
/ else, range (with `$i, $m :=` and else), break / continue, variables (`:=`, `=`, `$`), fields (`.Role`,
`$.Messages`, `(index $.Messages 0).Role`), string / raw-string / number / bool literals, pipelines with `|`, and
the functions eq ne lt le gt ge and or not len index slice print printf (and Ollama's json). Anything else is a
GoTemplateError naming the action, never a silent difference from Go.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

Operand = tuple  # ("str"|"num"|"bool"|"nil", value) | ("dot", fields) | ("var", name, fields) |
#                  ("paren", Pipe, fields) | ("func", name)


class GoTemplateError(Exception):
    """A template this parser or renderer does not accept, or an error Go would raise while executing it."""


@dataclass(frozen=True)
class Pipe:
    """A pipeline: commands joined by `|`, optionally declaring (`:=`) or assigning (`=`) variables."""

    commands: tuple[tuple[Operand, ...], ...]
    variables: tuple[str, ...] = ()
    assign: bool = False


@dataclass
class Text:
    """Literal text."""

    text: str


@dataclass
class Action:
    """`{{ pipeline }}`: prints the value unless the pipeline declares or assigns a variable."""

    pipe: Pipe


@dataclass
class Loop:
    """`{{ break }}` or `{{ continue }}`."""

    word: str


@dataclass
class Branch:
    """`if` (branches: each condition with its body) or `range` (one pipeline and its body); `otherwise` is else."""

    kind: str
    branches: list[tuple[Pipe, list]] = field(default_factory=list)
    otherwise: list = field(default_factory=list)


Node = Text | Action | Loop | Branch

TOKEN_RE = re.compile(r"""\s*(?:(?P<str>"(?:[^"\\]|\\.)*")|(?P<raw>`[^`]*`)|(?P<num>-?\d+)|(?P<assign>:=|=)
    |(?P<punct>[()|,])|(?P<var>\$\w*(?:\.\w+)*)|(?P<dot>(?:\.\w+)+|\.)|(?P<word>[A-Za-z_]\w*))""", re.VERBOSE)
ESCAPE_RE = re.compile(r"\\(x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{3}|.)")
SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f",
                  "v": "\v", "'": "'"}
SPACE = " \t\r\n"


def go_unquote(literal: str) -> str:
    """The value of a Go interpreted string literal (without its quotes)."""
    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if code in SIMPLE_ESCAPES:
            return SIMPLE_ESCAPES[code]
        if code[0] in "xuU":
            return chr(int(code[1:], 16))
        if code[0] in "01234567":
            return chr(int(code, 8))
        raise GoTemplateError(f"unknown escape \\{code} in string literal \"{literal}\"")
    return ESCAPE_RE.sub(one, literal)


def split_actions(source: str) -> list[tuple[str, str]]:
    """The template as ("text", text) and ("action", inside) pieces, with trim markers applied to the text."""
    pieces: list[tuple[str, str]] = []
    pos, trim_next = 0, False
    while True:
        start = source.find("{{", pos)
        text = source[pos:] if start < 0 else source[pos:start]
        if trim_next:
            text = text.lstrip(SPACE)
        if start < 0:
            pieces.append(("text", text))
            return pieces
        inner_start = start + 2
        if source.startswith("-", inner_start) and source[inner_start + 1:inner_start + 2] in tuple(SPACE):
            text, inner_start = text.rstrip(SPACE), inner_start + 1
        pieces.append(("text", text))
        end = action_end(source, inner_start)
        inner = source[inner_start:end]
        trim_next = len(inner) >= 2 and inner[-1] == "-" and inner[-2] in SPACE
        pieces.append(("action", inner[:-1] if trim_next else inner))
        pos = end + 2


def action_end(source: str, start: int) -> int:
    """Where the `}}` closing the action that starts at `start` is (string literals may hold braces)."""
    pos, quote = start, ""
    while pos < len(source):
        char = source[pos]
        if quote:
            if char == "\\" and quote == '"':
                pos += 1
            elif char == quote:
                quote = ""
        elif char in "\"`":
            quote = char
        elif source.startswith("}}", pos):
            return pos
        pos += 1
    raise GoTemplateError(f"unclosed action starting {source[start - 2:start + 30]!r}")


def tokens(action: str) -> list[tuple[str, str]]:
    """The tokens of one action's inside, as (kind, text)."""
    out, pos = [], 0
    while pos < len(action):
        if action[pos:].strip() == "":
            break
        match = TOKEN_RE.match(action, pos)
        if not match:
            raise GoTemplateError(f"cannot read {action[pos:].strip()!r} in action {{{{{action}}}}}")
        kind = match.lastgroup or ""
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def parse_operand(toks: list[tuple[str, str]], i: int) -> tuple[Operand, int]:
    """One operand starting at toks[i]; returns it and the next index."""
    kind, text = toks[i]
    if kind == "str":
        return ("str", go_unquote(text[1:-1])), i + 1
    if kind == "raw":
        return ("str", text[1:-1]), i + 1
    if kind == "num":
        return ("num", int(text)), i + 1
    if kind == "dot":
        return ("dot", tuple(part for part in text.split(".") if part)), i + 1
    if kind == "var":
        name, *fields = text.split(".")
        return ("var", name, tuple(fields)), i + 1
    if kind == "word":
        if text in ("true", "false"):
            return ("bool", text == "true"), i + 1
        return ("nil", None) if text == "nil" else ("func", text), i + 1
    if text == "(":
        depth, j = 1, i + 1
        while j < len(toks) and depth:
            depth += {"(": 1, ")": -1}.get(toks[j][1], 0) if toks[j][0] == "punct" else 0
            j += 1
        if depth:
            raise GoTemplateError("unclosed parenthesis")
        inner = parse_pipe(toks[i + 1:j - 1])
        fields: tuple[str, ...] = ()
        if j < len(toks) and toks[j][0] == "dot" and toks[j][1] != ".":
            fields, j = tuple(part for part in toks[j][1].split(".") if part), j + 1
        return ("paren", inner, fields), j
    raise GoTemplateError(f"unexpected {text!r}")


def parse_pipe(toks: list[tuple[str, str]]) -> Pipe:
    """A pipeline from its tokens: optional `$a, $b :=` or `$a =`, then commands separated by `|`."""
    variables: list[str] = []
    assign = False
    for j, (kind, text) in enumerate(toks):
        if kind == "assign":
            names = [t for k, t in toks[:j] if k != "punct"]
            if not names or any(not n.startswith("$") for n in names):
                raise GoTemplateError(f"bad variable declaration {' '.join(t for _, t in toks)!r}")
            variables, assign, toks = names, text == "=", toks[j + 1:]
            break
    commands, command, i = [], [], 0
    while i < len(toks):
        if toks[i] == ("punct", "|"):
            commands.append(tuple(command))
            command, i = [], i + 1
            continue
        operand, i = parse_operand(toks, i)
        command.append(operand)
    commands.append(tuple(command))
    if any(not c for c in commands):
        raise GoTemplateError(f"empty command in pipeline {' '.join(t for _, t in toks)!r}")
    return Pipe(tuple(commands), tuple(variables), assign)


def parse(source: str) -> list[Node]:
    """The template's node tree; raises GoTemplateError on syntax this subset does not cover."""
    root: list[Node] = []
    stack: list[tuple[Branch, list[Node]]] = []  # open if/range blocks and the body being filled
    body = root
    for kind, text in split_actions(source):
        if kind == "text":
            if text:
                body.append(Text(text))
            continue
        inner = text.strip()
        if inner.startswith("/*"):
            continue
        word = inner.split(None, 1)[0] if inner else ""
        rest = tokens(inner[len(word):]) if word in ("if", "range", "else", "end") else []
        if word in ("if", "range"):
            block = Branch(word, [(parse_pipe(rest), [])])
            body.append(block)
            stack.append((block, body))
            body = block.branches[0][1]
        elif word == "else" and stack:
            block = stack[-1][0]
            if rest and rest[0] == ("word", "if") and block.kind == "if":
                block.branches.append((parse_pipe(rest[1:]), []))
                body = block.branches[-1][1]
            elif rest:
                raise GoTemplateError(f"unsupported {{{{{inner}}}}}")
            else:
                body = block.otherwise
        elif word == "end" and stack:
            body = stack.pop()[1]
        elif word in ("break", "continue") and any(b.kind == "range" for b, _ in stack):
            body.append(Loop(word))
        elif word in ("with", "define", "template", "block", "else", "end", "break", "continue"):
            raise GoTemplateError(f"unsupported or misplaced action {{{{{inner}}}}}")
        else:
            body.append(Action(parse_pipe(tokens(inner))))
    if stack:
        raise GoTemplateError(f"unclosed {{{{{stack[-1][0].kind} ...}}}}: missing {{{{ end }}}}")
    return root
