"""Execute a parsed Go template (go_template.py) the way Go's text/template does, for Ollama's chat values."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from tunelab.export.go_template import Action, Branch, GoTemplateError, Loop, Node, Operand, Pipe, Text, parse

Value = str | int | bool | None | list | dict
PRINTF_RE = re.compile(r"%([svdq%])")


class LoopSignal(Exception):
    """`{{ break }}` / `{{ continue }}` unwinding to the enclosing range."""

    def __init__(self, word: str) -> None:
        super().__init__(word)
        self.word = word


def truth(value: Value) -> bool:
    """Go's truth: false, 0, nil and empty strings, slices and maps are false; anything else is true."""
    if isinstance(value, (str, list, dict)):
        return len(value) > 0
    return bool(value) if value is not None else False


def show(value: Value) -> str:
    """How Go's fmt prints a value into the output."""
    if value is None:
        return "<no value>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + " ".join(show(v) for v in value) + "]"
    return str(value)


def printf(layout: str, *args: Value) -> str:
    """Go's printf for the verbs %s %v %d %q %%."""
    queue = list(args)

    def one(match: re.Match[str]) -> str:
        verb = match.group(1)
        if verb == "%":
            return "%"
        if not queue:
            return f"%!{verb}(MISSING)"
        value = queue.pop(0)
        return json.dumps(value, ensure_ascii=False) if verb == "q" else show(value)
    return PRINTF_RE.sub(one, layout)


def compare(name: str, left: Value, right: Value) -> bool:
    """lt / le / gt / ge on two values of one basic kind."""
    if type(left) is not type(right) or isinstance(left, (list, dict, type(None))):
        raise GoTemplateError(f"{name}: incompatible types for comparison ({left!r}, {right!r})")
    return {"lt": left < right, "le": left <= right, "gt": left > right, "ge": left >= right}[name]


def go_slice(value: Value, *bounds: Value) -> Value:
    """slice x i j: Go's x[i:j] on a list, or on a string's UTF-8 bytes."""
    if not isinstance(value, (str, list)) or not all(isinstance(b, int) for b in bounds) or len(bounds) > 2:
        raise GoTemplateError(f"slice: cannot slice {value!r} with {bounds!r}")
    items = value.encode("utf-8") if isinstance(value, str) else value
    start = bounds[0] if bounds else 0
    stop = bounds[1] if len(bounds) > 1 else len(items)
    if not 0 <= start <= stop <= len(items):
        raise GoTemplateError(f"slice: index out of range [{start}:{stop}] with length {len(items)}")
    part = items[start:stop]
    return part.decode("utf-8", errors="replace") if isinstance(part, bytes) else part


def go_print(*values: Value) -> str:
    """print: Go's fmt.Sprint, a space between two operands when neither is a string."""
    out = ""
    for i, value in enumerate(values):
        if i and not isinstance(value, str) and not isinstance(values[i - 1], str):
            out += " "
        out += show(value)
    return out


def go_index(value: Value, *keys: Value) -> Value:
    """index x k...: list elements (range-checked) and map entries (missing: nil)."""
    for key in keys:
        if isinstance(value, list) and isinstance(key, int):
            if not 0 <= key < len(value):
                raise GoTemplateError(f"index: index out of range: {key}")
            value = value[key]
        elif isinstance(value, dict):
            value = value.get(key)
        else:
            raise GoTemplateError(f"index: cannot index {value!r} with {key!r}")
    return value


def go_length(value: Value) -> int:
    """len x for strings (in bytes, as Go counts), lists and maps."""
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, (list, dict)):
        return len(value)
    raise GoTemplateError(f"len of {value!r}")


def eq(left: Value, *others: Value) -> bool:
    """eq a b c...: a equals any of the others (basic values only, as in Go)."""
    if not others:
        raise GoTemplateError("eq: missing argument for comparison")
    return any(left == other and type(left) is type(other) for other in others)


FUNCTIONS: dict[str, Callable[..., Value]] = {
    "eq": eq, "ne": lambda a, b: not eq(a, b), "not": lambda a: not truth(a), "len": go_length,
    "lt": lambda a, b: compare("lt", a, b), "le": lambda a, b: compare("le", a, b),
    "gt": lambda a, b: compare("gt", a, b), "ge": lambda a, b: compare("ge", a, b),
    "index": go_index, "slice": go_slice, "printf": printf,
    "print": go_print, "json": lambda v: json.dumps(v, separators=(",", ":")),
}


class Renderer:
    """One execution of a template over a data value, with Go's variable scoping."""

    def __init__(self, data: dict) -> None:
        self.variables: list[tuple[str, Value]] = [("$", data)]
        self.out: list[str] = []

    def field(self, value: Value, names: tuple[str, ...]) -> Value:
        """Fields of a value (`.A.B`); a missing map key is nil, as with Ollama's missingkey=zero."""
        for name in names:
            if not isinstance(value, dict):
                raise GoTemplateError(f"can't evaluate field {name} in {value!r}")
            value = value.get(name)
        return value

    def variable(self, name: str) -> Value:
        """The innermost variable of that name."""
        for key, value in reversed(self.variables):
            if key == name:
                return value
        raise GoTemplateError(f"undefined variable: {name}")

    def operand(self, op: Operand, dot: Value) -> Value:
        """The value of one operand."""
        kind = op[0]
        if kind in ("str", "num", "bool", "nil"):
            return op[1]
        if kind == "dot":
            return self.field(dot, op[1])
        if kind == "var":
            return self.field(self.variable(op[1]), op[2])
        if kind == "paren":
            return self.field(self.pipe(op[1], dot), op[2])
        raise GoTemplateError(f"function {op[1]} used as a value")

    def command(self, command: tuple[Operand, ...], dot: Value, piped: tuple[Value, ...]) -> Value:
        """One command: a function call (the piped value last) or a single operand."""
        head = command[0]
        if head[0] != "func":
            if len(command) > 1 or piped:
                raise GoTemplateError(f"can't give arguments to a non-function {head!r}")
            return self.operand(head, dot)
        name, args = head[1], command[1:]
        if name in ("and", "or"):  # short-circuit, returning the deciding argument, as Go does
            value: Value = None
            for arg in [lambda a=a: self.operand(a, dot) for a in args] + [lambda p=p: p for p in piped]:
                value = arg()
                if truth(value) != (name == "and"):
                    return value
            return value
        if name not in FUNCTIONS:
            raise GoTemplateError(f'function "{name}" not defined')
        return FUNCTIONS[name](*[self.operand(a, dot) for a in args], *piped)

    def pipe(self, pipe: Pipe, dot: Value) -> Value:
        """A pipeline's value, declaring or assigning its variables."""
        value: tuple[Value, ...] = ()
        for command in pipe.commands:
            value = (self.command(command, dot, value),)
        result = value[0]
        for name in pipe.variables:
            if pipe.assign:
                index = max(i for i, (key, _) in enumerate(self.variables) if key == name) if any(
                    key == name for key, _ in self.variables) else -1
                if index < 0:
                    raise GoTemplateError(f"undefined variable: {name}")
                self.variables[index] = (name, result)
            else:
                self.variables.append((name, result))
        return result

    def walk(self, nodes: list[Node], dot: Value) -> None:
        """Execute nodes, appending their output."""
        for node in nodes:
            if isinstance(node, Text):
                self.out.append(node.text)
            elif isinstance(node, Action):
                value = self.pipe(node.pipe, dot)
                if not node.pipe.variables:
                    self.out.append(show(value))
            elif isinstance(node, Loop):
                raise LoopSignal(node.word)
            elif node.kind == "if":
                self.branch(node, dot)
            else:
                self.range(node, dot)

    def scoped(self, nodes: list[Node], dot: Value, mark: int) -> None:
        """Execute a block body; its variables end with it."""
        try:
            self.walk(nodes, dot)
        finally:
            del self.variables[mark:]

    def branch(self, node: Branch, dot: Value) -> None:
        """if / else if / else."""
        mark = len(self.variables)
        for condition, body in node.branches:
            if truth(self.pipe(condition, dot)):
                return self.scoped(body, dot, mark)
        self.scoped(node.otherwise, dot, mark)

    def range(self, node: Branch, dot: Value) -> None:
        """range over a list (index, element) or a map (sorted keys), with else when empty."""
        pipe, body = node.branches[0]
        mark = len(self.variables)
        items = self.pipe(Pipe(pipe.commands), dot)
        if not isinstance(items, (list, dict)) and items is not None:
            raise GoTemplateError(f"range can't iterate over {items!r}")
        pairs = list(enumerate(items)) if isinstance(items, list) else sorted((items or {}).items())
        names = list(pipe.variables)
        if not pairs:
            return self.scoped(node.otherwise, dot, mark)
        for key, item in pairs:
            bound = [(names[-1], item)] if len(names) == 1 else list(zip(names, (key, item)))
            self.variables.extend(bound)
            inner = len(self.variables)
            try:
                self.scoped(body, item, inner)
            except LoopSignal as signal:
                if signal.word == "break":
                    del self.variables[mark:]
                    break
            del self.variables[mark:]


def render(source: str, data: dict) -> str:
    """Execute the Go template `source` over `data` (a dict: .System, .Messages ...), as text/template would."""
    renderer = Renderer(data)
    try:
        renderer.walk(parse(source), data)
    except LoopSignal as signal:
        raise GoTemplateError(f"{{{{{signal.word}}}}} outside range") from None
    return "".join(renderer.out)
