"""The `reward_funcs:` entries of stage grpo: built-in rule rewards or a user's Python function, each weighted.

A config may write them as a comma-separated string (`reward_funcs: accuracy,format`), a list of names, or a list
of mappings with the reward's own settings; `parse_rewards` turns any of these into RewardSpec entries, one problem
per bad entry (keyed like reward_funcs[1].pattern), so every bad entry is reported at once.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field, NonNegativeFloat, PositiveInt

from tunelab.config.errors import Problem
from tunelab.config.eval_tasks import Entry, ExtractorSpec, parse_entry

BUILTIN_REWARDS: tuple[str, ...] = ("accuracy", "format", "length")


class RewardSpec(Entry):
    """One reward function of stage grpo and its weight in the summed reward."""

    name: str = Field(description="accuracy (the answer against the row's reference, through an extractor), "
                      "format (1 when the whole answer matches `pattern`), length (closeness to `target` under "
                      "`rule`), or a user function as path/to/rewards.py:function.")
    weight: float = Field(1.0, description="Weight of this reward in the sum (may be negative).")
    extractor: ExtractorSpec | None = Field(
        None, description="accuracy: extractor applied to the answer and the reference (default: the whole text, "
        "normalised), as in eval_tasks.")
    pattern: str | None = Field(None, description="format: regular expression the answer must match in full.")
    flags: str = Field("", description="format: regex flags (i, s, m).")
    target: PositiveInt | None = Field(None, description="length: target length (default: the row's reference "
                                       "answer's length).")
    rule: str = Field("chars", description="length: how length is counted (chars, chars_no_space, words, tokens), "
                      "the rule of the evaluation's length task.")
    tolerance: NonNegativeFloat = Field(0.0, description="length: deviation (in units of the rule) that still "
                                        "scores 1.")

    def is_user_function(self) -> bool:
        """A `path.py:function` entry rather than a built-in name."""
        return self.name not in BUILTIN_REWARDS


def as_entries(raw: object) -> list[object]:
    """The entries of reward_funcs as written: a comma string splits into names; None is no entries."""
    if raw is None:
        return []
    if isinstance(raw, str):
        return [{"name": part.strip()} for part in raw.split(",") if part.strip()]
    if isinstance(raw, Sequence):
        return [{"name": item} if isinstance(item, str) else item for item in raw]
    return [raw]


def parse_rewards(raw: object) -> tuple[list[RewardSpec | None], list[Problem]]:
    """reward_funcs entries validated one by one; the list is aligned with the entries (None where invalid)."""
    if raw is not None and not isinstance(raw, (str, Sequence)):
        return [], [Problem("reward_funcs", f"must be a list of rewards or a comma-separated string, not {raw!r}")]
    parsed: list[RewardSpec | None] = []
    problems: list[Problem] = []
    for index, item in enumerate(as_entries(raw)):
        if isinstance(item, dict) and "name" not in item:
            problems.append(Problem(f"reward_funcs[{index}].name", "required: accuracy, format, length or "
                                    "path/to/rewards.py:function"))
            parsed.append(None)
            continue
        entry, found = parse_entry("reward_funcs", index, item, RewardSpec)
        parsed.append(entry)
        problems += found
    return parsed, problems
