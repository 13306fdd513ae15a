"""Rubrics: the shipped Jinja templates (zh, en; single and pairwise) or the user's file, rendered per question."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jinja2
from jinja2 import meta

SHIPPED = ("zh", "en")
ANSWER_VARIABLES = {"single": ("answer",), "pairwise": ("answer_a", "answer_b")}


def environment() -> jinja2.Environment:
    """A Jinja environment that fails on undefined variables and keeps text as written (no HTML escaping)."""
    return jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)


def rubric_source(rubric: str, mode: str) -> str:
    """The rubric's Jinja text: a shipped one by language, else the user's file."""
    if rubric in SHIPPED:
        return resources.files("tunelab.eval.judge").joinpath("rubrics").joinpath(f"{mode}_{rubric}.jinja") \
            .read_text(encoding="utf-8")
    return Path(rubric).read_text(encoding="utf-8")


def template_problem(source: str, mode: str) -> str | None:
    """Why a rubric cannot be used (a syntax error, no place for the answer), or None."""
    try:
        parsed = environment().parse(source)
    except jinja2.TemplateSyntaxError as exc:
        return f"line {exc.lineno}: {exc.message}; fix the Jinja syntax"
    used = meta.find_undeclared_variables(parsed)
    missing = [name for name in ANSWER_VARIABLES[mode] if name not in used]
    if missing:
        return (f"a {mode} rubric must show {' and '.join(missing)} ({{{{ {missing[0]} }}}}); "
                f"it uses {', '.join(sorted(used)) or 'no variables'}")
    return None


@dataclass(frozen=True)
class Rubric:
    """A loaded rubric and its scale; renders one question for the judge."""

    source: str
    scale_min: int
    scale_max: int

    def render(self, question: str, reference: str | None, answer: str = "", answer_a: str = "",
               answer_b: str = "") -> str:
        """The judge's prompt for one row (pairwise: answer_a and answer_b)."""
        template = environment().from_string(self.source)
        return template.render(question=question, reference=reference or "", answer=answer, answer_a=answer_a,
                               answer_b=answer_b, scale_min=self.scale_min, scale_max=self.scale_max).strip()
