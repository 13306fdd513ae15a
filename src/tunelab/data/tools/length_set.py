"""`tunelab data length-set`: a length-control test set ("write N characters about X", N = 5, 10, ... 700).

Each row is an alpaca row with the prompt (instruction), the target length in its own field and the scenario
when there is one; there is no answer to learn, so the rows have no input or output field and the entry maps
the prompt only (`tunelab eval`'s length task reads them as prompts to answer). The file is registered in
dataset_info.json the way `tunelab data register` does it (sha1 and all).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tunelab.data.errors import DataError
from tunelab.data.read import Row
from tunelab.data.tools.files import write_rows
from tunelab.data.registry import REGISTRY_FILE, read_registry
from tunelab.data.tools.register import Registration, register, same_file
from tunelab.runtime.suggest import suggest

LENGTH_PLACEHOLDER = "{N}"
SCENARIO_PLACEHOLDER = "{scenario}"
PLACEHOLDER = re.compile(r"\{(\w+)\}")
DEFAULT_FIELD = "target_length"
SCENARIO_FIELD = "scenario"


@dataclass(frozen=True)
class LengthSet:
    """What a length set is made of: the prompt template, the target lengths and the scenarios (maybe none)."""

    template: str
    lengths: range
    scenarios: tuple[str, ...] = ()
    field: str = DEFAULT_FIELD


def target_lengths(start: int, stop: int, step: int) -> range:
    """N from start to stop (included) in steps; bad bounds are errors that say what to give."""
    if step <= 0:
        raise DataError(f"--step is {step}; the step between lengths must be 1 or more", fix="e.g. --step 5")
    if start <= 0:
        raise DataError(f"--from is {start}; the shortest length must be 1 or more", fix="e.g. --from 5")
    if start > stop:
        raise DataError(f"--from {start} is greater than --to {stop}", fix="swap them, e.g. --from 5 --to 700")
    return range(start, stop + 1, step)


def check_template(template: str, scenarios: tuple[str, ...]) -> None:
    """The template holds {N}, holds {scenario} exactly when scenarios are given, and no other placeholder."""
    unknown = [name for name in PLACEHOLDER.findall(template) if name not in ("N", "scenario")]
    if unknown:
        hint = "; did you mean {N}?" if unknown[0].lower() in ("n", "length") else suggest(unknown[0], ("scenario",))
        raise DataError(f"the template has an unknown placeholder {{{unknown[0]}}}{hint}",
                        fix="the template takes {N} (the length) and {scenario}; nothing else")
    if LENGTH_PLACEHOLDER not in template:
        raise DataError(f"the template {template!r} has no {LENGTH_PLACEHOLDER} placeholder for the length",
                        fix="write it where the number goes, e.g. \"请写一段{N}字的{scenario}祝福语\"")
    if scenarios and SCENARIO_PLACEHOLDER not in template:
        raise DataError(f"scenarios are given but the template has no {SCENARIO_PLACEHOLDER} placeholder",
                        fix="add {scenario} to the template, or leave out --scenario/--scenarios-file")
    if not scenarios and SCENARIO_PLACEHOLDER in template:
        raise DataError(f"the template has {SCENARIO_PLACEHOLDER} but no scenario is given",
                        fix="give --scenario TEXT (repeatable) or --scenarios-file FILE (one per line)")


def read_scenarios(inline: list[str], files: list[Path]) -> tuple[str, ...]:
    """Scenarios given inline and in files (one a line; blank lines skipped), in order, without repeats."""
    found = [text.strip() for text in inline]
    if any(not text for text in found):
        raise DataError("--scenario is empty", fix="give the scenario's text, e.g. --scenario 春节")
    for file in files:
        if not file.is_file():
            raise DataError("scenarios file not found", file=str(file), fix="check the path")
        lines = [line.strip() for line in file.read_text(encoding="utf-8").splitlines()]
        if not any(lines):
            raise DataError("the scenarios file holds no scenario", file=str(file), fix="write one scenario a line")
        found += [line for line in lines if line]
    return tuple(dict.fromkeys(found))


def length_rows(spec: LengthSet) -> list[Row]:
    """One row per (scenario, length): the prompt, the target length and the scenario."""
    check_template(spec.template, spec.scenarios)
    rows: list[Row] = []
    for scenario in spec.scenarios or (None,):
        for length in spec.lengths:
            text = spec.template.replace(LENGTH_PLACEHOLDER, str(length))
            row: Row = {"instruction": text, spec.field: length}
            if scenario is not None:
                row = {"instruction": text.replace(SCENARIO_PLACEHOLDER, scenario), spec.field: length,
                       SCENARIO_FIELD: scenario}
            rows.append(row)
    return rows


def write_length_set(spec: LengthSet, out: Path, name: str, overwrite: bool = False,
                     dataset_dir: Path | None = None, force: bool = False) -> tuple[int, Registration]:
    """Write the rows to out (.json or .jsonl) and register them as name; an existing file needs overwrite, a name
    registered for another file needs force."""
    if spec.field in ("instruction", SCENARIO_FIELD):
        raise DataError(f"--field {spec.field!r} is taken by the prompt or the scenario",
                        fix=f"name the length field otherwise, e.g. --field {DEFAULT_FIELD}")
    if out.suffix.lower() not in (".json", ".jsonl"):
        raise DataError(f"cannot write a length set as {out.suffix or 'an extensionless file'}", file=str(out),
                        fix="name the output .json or .jsonl")
    rows = length_rows(spec)
    if not force:
        check_name_free(name, out, dataset_dir if dataset_dir is not None else out.parent)
    if out.exists() and not overwrite:
        raise DataError("the output file exists", file=str(out), fix="pass --overwrite to replace it, or choose "
                                                                     "another --out")
    write_rows(out, rows)
    return len(rows), register(out, name, columns={"prompt": "instruction"}, dataset_dir=dataset_dir,
                               force=force, fresh=True)


def check_name_free(name: str, out: Path, folder: Path) -> None:
    """Before anything is written: the name is new, or already registered for this very file."""
    if not (folder / REGISTRY_FILE).is_file():
        return
    previous = read_registry(folder).get(name)
    if isinstance(previous, dict) and not same_file(previous, folder, out):
        raise DataError(f"the name {name!r} is already used for {previous.get('file_name') or 'a hub dataset'}",
                        file=str(folder / REGISTRY_FILE), fix="choose another --name, or pass --force to point it "
                                                              f"at {out}")


def describe(spec: LengthSet, count: int, out: Path) -> list[str]:
    """The line the command prints about the rows written."""
    lengths = spec.lengths
    count_of = len(spec.scenarios)
    scenarios = f" x {count_of} scenario{'s' if count_of > 1 else ''}" if spec.scenarios else ""
    return [f"wrote {count} rows to {out}: lengths {lengths.start}..{lengths[-1]} step {lengths.step} "
            f"({len(lengths)} lengths{scenarios}); target length in field {spec.field!r}"]
