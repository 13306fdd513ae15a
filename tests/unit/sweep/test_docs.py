"""The commands docs/sweeps.md shows work as written with the shipped files: every `tunelab sweep` line plans
without a problem (the judge sweep after the copy and the task the page says to add), and the trial folders that
`tunelab runs compare` names are trials of the first sweep."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from tunelab.interfaces.cli import build_parser
from tunelab.interfaces.sweep_cli import sweep_flags
from tunelab.sweep.naming import trial_name
from tunelab.sweep.plan import load_plan
from tunelab.sweep.spec import SweepPlan

REPO = Path(__file__).resolve().parents[3]
DOC = REPO / "docs" / "sweeps.md"
EXAMPLE = REPO / "examples" / "sweep_identity.yaml"


def shown_commands(prefix: str) -> list[list[str]]:
    """The words of every command in the page's bash blocks that starts with `prefix` (continued lines joined)."""
    text = DOC.read_text(encoding="utf-8")
    lines = "\n".join(re.findall(r"```bash\n(.*?)```", text, re.DOTALL)).replace("\\\n", " ").splitlines()
    return [shlex.split(line, comments=True) for line in lines if line.startswith(prefix)]


def judge_copy(folder: Path) -> Path:
    """The copy of the example the page tells to make, with the judge task of its YAML block added."""
    text = DOC.read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL) if "type: judge" in b)
    added = [task for task in yaml.safe_load(block.replace("    ...\n", ""))["eval_tasks"] if task["name"] != "length"]
    flat = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    flat["eval_tasks"] += added
    path = folder / "sweep_judge.yaml"
    path.write_text(yaml.safe_dump(flat, sort_keys=False), encoding="utf-8")
    return path


def plan_of(words: list[str]) -> SweepPlan:
    args, extra = build_parser().parse_known_args(words[1:])
    return load_plan(args.config, list(args.overrides) + extra, sweep_flags(args))


def test_every_sweep_command_of_the_page_plans(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    copy = judge_copy(tmp_path)
    commands = [[str(copy) if word == copy.name else word for word in words] for words in shown_commands(
        "tunelab sweep ")]
    plans = [plan_of(words) for words in commands]
    assert len(plans) >= 5 and "judge:judge-mean" in [plan.metric for plan in plans]
    first = plan_of(["tunelab", "sweep", str(EXAMPLE)])
    trials = {first.folder / trial_name(values) for values in first.combinations()}
    compared = shown_commands("tunelab runs compare ")
    assert compared and all(Path(folder) in trials for words in compared for folder in words[3:])
