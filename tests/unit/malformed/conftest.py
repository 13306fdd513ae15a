"""The malformed-input suite's runner: the real `tunelab` entry point, in process, with what a user would see."""

from __future__ import annotations

import json
import re
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tunelab.interfaces.cli import main


@dataclass(frozen=True)
class Outcome:
    """What a command did: its exit code, its output, and an exception that escaped main (a traceback)."""

    code: int | None
    out: str
    err: str
    escaped: str | None

    @property
    def text(self) -> str:
        return self.out + self.err

    def check_refused(self, *names: str) -> None:
        """Non-zero exit, no traceback, and every name in the message."""
        assert self.escaped is None, f"a traceback escaped:\n{self.escaped}"
        assert "Traceback (most recent call last)" not in self.text, self.text
        assert self.code not in (0, None), f"exit code {self.code}:\n{self.text}"
        missing = [name for name in names if not names_it(self.text, name)]
        assert not missing, f"the message does not name {missing}:\n{self.text}"


Run = Callable[..., Outcome]


def names_it(text: str, name: str) -> bool:
    """The text names `name`; 'row 2' is also named by a list such as 'rows 2' or 'rows 1, 2'."""
    match = re.fullmatch(r"(row|line) (\d+)", name)
    if match is None:
        return name in text
    return re.search(rf"\b{match[1]}s? (\d+, )*{match[2]}\b", text) is not None


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> Run:
    """run_cli('data', 'validate', cfg): the command's Outcome."""
    def run(*argv: str | Path) -> Outcome:
        capsys.readouterr()
        escaped = None
        try:
            code: int | None = main([str(arg) for arg in argv])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 2
        except BaseException:  # any other exception is a traceback the user would see
            code, escaped = None, traceback.format_exc()
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err, escaped)
    return run


def write_config(folder: Path, **keys: object) -> Path:
    """A YAML config (JSON is YAML) with the given keys."""
    path = folder / "run.yaml"
    path.write_text(json.dumps(keys), encoding="utf-8")
    return path


def register(folder: Path, name: str, file_name: str, entry: dict[str, object]) -> None:
    """Add an entry to folder/dataset_info.json."""
    info_path = folder / "dataset_info.json"
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else {}
    info[name] = {"file_name": file_name, **entry}
    info_path.write_text(json.dumps(info, indent=2), encoding="utf-8")
