"""How the combination checks run: each is a function of exactly the sections it reads, typed with their classes.

`declare` reads those types; `run_checks` calls a check only when every section it needs validated, so field
problems and combination problems are reported together. A parameter typed `Section | None = None` is optional:
the check runs with None when that section failed. Nothing is caught: an AttributeError inside a check is a bug
and surfaces as one.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from tunelab.config.errors import Problem
from tunelab.config.schema import SECTIONS, Section

CheckFunction = Callable[..., list[Problem]]


@dataclass(frozen=True)
class Check:
    """A check and the sections it reads: parameter name -> (section name, required)."""

    function: CheckFunction
    reads: Mapping[str, tuple[str, bool]]

    @property
    def name(self) -> str:
        """The check function's name."""
        return self.function.__name__

    def arguments(self, sections: Mapping[str, Section]) -> dict[str, Section | None] | None:
        """The check's arguments from the sections that validated, or None when a required one did not."""
        if any(required and section not in sections for section, required in self.reads.values()):
            return None
        return {parameter: sections.get(section) for parameter, (section, _) in self.reads.items()}


@dataclass
class CheckRun:
    """What a run of checks found, and which checks ran and which were skipped (a section they read failed)."""

    problems: list[Problem] = field(default_factory=list)
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def declare(function: CheckFunction) -> Check:
    """The Check of a function whose every parameter is a section (`data: DataSection`, or
    `train: TrainSection | None = None` for an optional one); any other parameter is an error at import."""
    owners = {cls: name for name, cls in SECTIONS.items()}
    hints = typing.get_type_hints(function)
    reads: dict[str, tuple[str, bool]] = {}
    for parameter in inspect.signature(function).parameters.values():
        hint = hints.get(parameter.name)
        if hint in owners and parameter.default is inspect.Parameter.empty:
            reads[parameter.name] = (owners[hint], True)
            continue
        present = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        if len(present) == 1 and present[0] in owners and parameter.default is None:
            reads[parameter.name] = (owners[present[0]], False)
            continue
        raise TypeError(f"check {function.__name__}: parameter {parameter.name} must be typed with a config "
                        "section (e.g. data: DataSection, or train: TrainSection | None = None for an optional one)")
    return Check(function, reads)


def run_checks(sections: Mapping[str, Section], checks: Sequence[Check]) -> CheckRun:
    """Run each check whose sections validated, in order; the others are listed as skipped."""
    run = CheckRun()
    for check in checks:
        arguments = check.arguments(sections)
        if arguments is None:  # a section it reads did not validate; its own problems are reported
            run.skipped.append(check.name)
            continue
        run.problems += check.function(**arguments)
        run.ran.append(check.name)
    return run
