"""ConfigError: every problem of a config, reported together; pydantic's errors as Problems."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config: the key (or file) it concerns and what to do."""

    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


class ConfigError(Exception):
    """Raised with all the problems found in a config; the CLI prints them and exits with code 2."""

    def __init__(self, problems: list[Problem], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(self.render())

    def render(self) -> str:
        """The message the user sees."""
        where = f" {self.source}" if self.source else ""
        count = len(self.problems)
        head = f"the config{where} has {count} problem{'s' if count != 1 else ''}"
        return "\n".join([head] + [f"  {p}" for p in self.problems])


def location(loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as the user writes it: eval_tasks[1].metrics."""
    if not loc:
        return "config"
    text = str(loc[0])
    for part in loc[1:]:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def pydantic_problems(exc: ValidationError) -> list[Problem]:
    """Turn pydantic's errors into Problems keyed by the flat key."""
    problems = []
    for err in exc.errors():
        key = location(err["loc"])
        if err["type"] == "missing":
            problems.append(Problem(key, "required; add it to the YAML or pass " f"{key}=..."))
            continue
        got = err.get("input")
        problems.append(Problem(key, f"{err['msg'].lower()} (got {got!r})"))
    return problems
