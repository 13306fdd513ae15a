"""Interrupted writes never look complete: with a file size limit (RLIMIT_FSIZE) reached part-way through, the
data tools' outputs, dataset_info.json and tokenized files keep their previous content, no temporary file is left,
and the error names the path."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tunelab.runtime.atomic import atomic_file, atomic_folder

LIMITED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
from tunelab.interfaces.cli import main
sys.exit(main(sys.argv[1:]))
"""
ROWS = [{"instruction": f"Question number {i}?", "output": f"Answer number {i}, " + "long " * 20} for i in range(200)]


def run_limited(limit: int, *argv: str | Path) -> subprocess.CompletedProcess[str]:
    src = Path(__file__).resolve().parents[3] / "src"
    return subprocess.run([sys.executable, "-c", LIMITED.format(limit=limit), *map(str, argv)], capture_output=True,
                          text=True, env={"PYTHONPATH": str(src), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin",
                               # the limit would cut the bytecode caches Python writes while it imports
                               "PYTHONDONTWRITEBYTECODE": "1"},
                          timeout=120)


def check(result: subprocess.CompletedProcess[str], path: Path, before: bytes) -> None:
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    assert str(path) in result.stderr and "file size limit" in result.stderr, result.stderr
    assert path.read_bytes() == before
    assert not [p for p in path.parent.iterdir() if p.name.startswith(f".{path.name}.")], "a temporary was left"


@pytest.mark.parametrize("tool", ["convert", "dedup"])
def test_data_tool_output_keeps_the_previous_file(tool: str, tmp_path: Path) -> None:
    source = tmp_path / "rows.json"
    source.write_text(json.dumps(ROWS), encoding="utf-8")  # read before the limit matters: reading is not limited
    out = tmp_path / "out.json"
    out.write_text('[{"instruction": "old", "output": "old"}]\n', encoding="utf-8")
    before = out.read_bytes()
    argv = (["--to", "alpaca", "--map", "instruction=instruction,output=output"] if tool == "convert" else [])
    result = run_limited(len(json.dumps(ROWS)) // 2, "data", tool, source, *argv, "--out", out)
    check(result, out, before)


def test_registry_keeps_the_previous_file(tmp_path: Path) -> None:
    data = tmp_path / "rows.json"
    data.write_text(json.dumps(ROWS[:2]), encoding="utf-8")
    registry = tmp_path / "dataset_info.json"
    registry.write_text(json.dumps({f"old{i}": {"file_name": "rows.json"} for i in range(40)}, indent=2),
                        encoding="utf-8")
    before = registry.read_bytes()
    result = run_limited(len(before) - 10, "data", "register", data, "--name", "new")
    check(result, registry, before)


def test_atomic_file_and_folder_leave_the_old_content_on_an_error(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError), atomic_file(path) as handle:
        handle.write("new")
        raise RuntimeError("interrupted")
    assert path.read_text(encoding="utf-8") == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "x").write_text("old", encoding="utf-8")
    with pytest.raises(OSError) as excinfo, atomic_folder(folder) as stage:
        (stage / "x").write_text("new", encoding="utf-8")
        raise OSError(28, "No space left on device")
    assert excinfo.value.filename == str(folder)
    assert (folder / "x").read_text(encoding="utf-8") == "old" and sorted(p.name for p in tmp_path.iterdir()) == [
        "a.txt", "saved"]
