"""Checks of stage grpo's `reward_funcs:` before anything loads: each entry's fields fit its reward, patterns
compile, extractors and length rules exist, and a user function's file defines the function.

Config sits below text/, so the extractor and length-rule names are kept here; tests keep them equal to
tunelab.text.extract's and tunelab.text.length's tables. A user function's file is parsed with `ast` and never run
at config time.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tunelab.config.errors import Problem
from tunelab.config.rewards import BUILTIN_REWARDS, RewardSpec, as_entries, parse_rewards
from tunelab.config.schema import InferSection, MethodSection, PrefSection

# text.extract.PARAMETERS: extractor name -> the parameters it takes (tests keep the two equal)
EXTRACTOR_PARAMETERS: dict[str, frozenset[str]] = {
    "text": frozenset(), "first_line": frozenset(), "regex": frozenset({"pattern", "flags", "occurrence"}),
    "choice": frozenset({"letters", "multiple"}), "number": frozenset({"occurrence"}), "json": frozenset({"path"}),
    "list": frozenset({"separators"}), "letter_list": frozenset({"letters"}), "letter_set": frozenset({"letters"})}
LENGTH_RULE_NAMES: tuple[str, ...] = ("chars_no_space", "chars", "words", "tokens")  # text.length.RULE_NAMES
REGEX_FLAGS: dict[str, int] = {"i": re.IGNORECASE, "s": re.DOTALL, "m": re.MULTILINE}
# the fields only one built-in reward reads
OWN_FIELDS: dict[str, tuple[str, ...]] = {"accuracy": ("extractor",), "format": ("pattern", "flags"),
                                          "length": ("target", "rule", "tolerance")}
USER_FUNCTION = re.compile(r"^(?P<path>.+\.py):(?P<function>[A-Za-z_][A-Za-z0-9_]*)$")


def compile_flags(flags: str) -> int | None:
    """The re flags of a string of letters (i, s, m); None when a letter is unknown."""
    value = 0
    for letter in flags:
        if letter not in REGEX_FLAGS:
            return None
        value |= REGEX_FLAGS[letter]
    return value


def pattern_problems(where: str, pattern: object, flags: str) -> list[Problem]:
    """A regular expression and its flags compile."""
    value = compile_flags(flags)
    if value is None:
        return [Problem(f"{where}.flags", f"{flags!r} has unknown flags; use any of i (ignore case), s (dot "
                                          "matches newline), m (multiline)")]
    if not isinstance(pattern, str) or not pattern:
        return [Problem(f"{where}.pattern", "must be a non-empty regular expression")]
    try:
        re.compile(pattern, value)
    except re.error as exc:
        return [Problem(f"{where}.pattern", f"{pattern!r} does not compile: {exc}; fix the expression")]
    return []


def extractor_problems(where: str, spec: str | dict[str, object]) -> list[Problem]:
    """An accuracy reward's extractor names a known extractor with parameters it takes."""
    params = dict(spec) if isinstance(spec, dict) else {"name": spec}
    name = params.pop("name", None)
    if name not in EXTRACTOR_PARAMETERS:
        return [Problem(f"{where}.extractor", f"unknown extractor {name!r}; use one of "
                                              f"{', '.join(EXTRACTOR_PARAMETERS)}")]
    unknown = sorted(set(params) - EXTRACTOR_PARAMETERS[str(name)])
    if unknown:
        takes = ", ".join(sorted(EXTRACTOR_PARAMETERS[str(name)])) or "none"
        return [Problem(f"{where}.extractor", f"extractor {name} has no parameter {', '.join(unknown)} (it takes: "
                                              f"{takes})")]
    if name == "regex":
        return pattern_problems(f"{where}.extractor", params.get("pattern"), str(params.get("flags", "")))
    return []


def defined_names(tree: ast.Module) -> set[str]:
    """Names a module defines at its top level: functions, classes and assignments."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def user_function_problems(where: str, name: str) -> list[Problem]:
    """A `path/to/rewards.py:function` entry: the file exists, parses, and defines the function (not run)."""
    match = USER_FUNCTION.match(name)
    if match is None:
        return [Problem(f"{where}.name", f"{name!r} is neither a built-in reward ({', '.join(BUILTIN_REWARDS)}) "
                                         "nor a user function written as path/to/rewards.py:function")]
    path = Path(match["path"])
    if not path.is_file():
        return [Problem(f"{where}.name", f"file {match['path']} not found (relative paths are looked up in the "
                                         "config file's folder, then the working directory); fix the path")]
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (SyntaxError, UnicodeDecodeError) as exc:
        line = f" line {exc.lineno}" if isinstance(exc, SyntaxError) and exc.lineno else ""
        return [Problem(f"{where}.name", f"{path}{line}: the file does not parse as Python ({exc}); fix it")]
    if match["function"] not in defined_names(tree):
        return [Problem(f"{where}.name", f"{path} defines no {match['function']!r} at its top level; define "
                                         f"def {match['function']}(completions, prompts, references) there")]
    return []


def entry_problems(where: str, entry: RewardSpec) -> list[Problem]:
    """One reward entry: the fields it sets fit its reward, and what it names exists."""
    own = OWN_FIELDS.get(entry.name, ())
    problems = [Problem(f"{where}.{field}", f"only for the {owner} reward; remove it from {entry.name!r}")
                for owner, fields in OWN_FIELDS.items() for field in fields
                if field in entry.model_fields_set and field not in own]
    if entry.is_user_function():
        return problems + user_function_problems(where, entry.name)
    if entry.name == "format":
        problems += pattern_problems(where, entry.pattern, entry.flags)
    if entry.name == "length" and entry.rule not in LENGTH_RULE_NAMES:
        problems.append(Problem(f"{where}.rule", f"unknown length rule {entry.rule!r}; use one of "
                                                 f"{', '.join(LENGTH_RULE_NAMES)}"))
    if entry.name == "accuracy" and entry.extractor is not None:
        problems += extractor_problems(where, entry.extractor)
    return problems


def reward_funcs_check(method: MethodSection, pref: PrefSection) -> list[Problem]:
    """reward_funcs: required for stage grpo and only there; every entry well formed."""
    if method.stage != "grpo":
        if as_entries(pref.reward_funcs):
            return [Problem("reward_funcs", f"only stage grpo uses rewards (this run is stage {method.stage}); "
                                            "remove reward_funcs or set stage: grpo")]
        return []
    entries, problems = parse_rewards(pref.reward_funcs)
    if not entries and not problems:
        return [Problem("reward_funcs", "stage grpo needs at least one reward, e.g. reward_funcs: accuracy,format "
                                        "(see docs/preference.md)")]
    for index, entry in enumerate(entries):
        if entry is not None:
            problems += entry_problems(f"reward_funcs[{index}]", entry)
    return problems


def grpo_sampling_check(method: MethodSection, infer: InferSection) -> list[Problem]:
    """grpo compares several sampled answers per prompt: greedy decoding would give the group one answer."""
    if method.stage == "grpo" and not infer.do_sample:
        return [Problem("do_sample", "stage grpo samples num_generations different answers per prompt; greedy "
                                     "decoding gives them all the same answer: set do_sample: true")]
    return []


def anchor_user_paths(raw: object, folder: Path) -> object:
    """reward_funcs with each user function's relative path made absolute: the config file's folder first, then
    the working directory (the saved config.yaml then works from any folder); other entries are unchanged."""
    if raw is None:
        return raw
    entries = as_entries(raw)
    changed: list[object] = []
    moved = False
    for item in entries:
        name = item.get("name") if isinstance(item, dict) else None
        match = USER_FUNCTION.match(name) if isinstance(name, str) and name not in BUILTIN_REWARDS else None
        if match is None or Path(match["path"]).is_absolute():
            changed.append(item)
            continue
        found = next((base / match["path"] for base in (folder, Path.cwd()) if (base / match["path"]).is_file()),
                     None)
        moved = moved or found is not None
        changed.append({**item, "name": f"{found.resolve()}:{match['function']}"} if found is not None else item)
    return changed if moved else raw
