"""Output paths that cannot be written (a folder inside a file, a link loop): every command that writes stops with
the path named and the fix, never with a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.malformed.conftest import Run, register, write_config

KEYS = {"train": "output_dir", "predict": "output_dir", "export": "export_dir", "tokenize": "--out"}


def blocked(tmp_path: Path, kind: str) -> Path:
    """A path that cannot be created: inside a regular file, or through a symbolic link loop."""
    if kind == "under-a-file":
        (tmp_path / "a-file").write_text("x", encoding="utf-8")
        return tmp_path / "a-file" / "out"
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    return loop / "out"


@pytest.mark.parametrize("kind", ["under-a-file", "link-loop"])
@pytest.mark.parametrize("command", list(KEYS))
def test_unwritable_output(command: str, kind: str, tmp_path: Path, tiny_model_dir: Path, run_cli: Run) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "qa.json").write_text(json.dumps([{"instruction": "hi", "output": "hello"}] * 4), encoding="utf-8")
    register(data, "qa", "qa.json", {})
    out = blocked(tmp_path, kind)
    keys: dict[str, object] = {"model_name_or_path": str(tiny_model_dir), "dataset_dir": str(data), "dataset": "qa",
                               "eval_dataset": "qa", "output_dir": str(tmp_path / "run"), "max_steps": 1}
    if command != "tokenize":
        keys[KEYS[command]] = str(out)
    config = write_config(tmp_path, **keys)
    argv = ["data", "tokenize", config, "--out", out] if command == "tokenize" else [command, config]
    run_cli(*argv).check_refused(str(out.parent))
