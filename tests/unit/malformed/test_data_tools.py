"""The data tools on generated malformed files: register (alpaca, sharegpt and openai rows, checked as training
would), convert, dedup and split (broken files), and validate on names that are not registered. Each is refused:
non-zero exit, no traceback, the file (and row or line) named."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.malformed.cases import Case, all_cases
from tests.unit.malformed.conftest import Run, register, write_config

CASES = all_cases()
REGISTER_FORMATS = ("alpaca", "sharegpt", "openai", "tools")
REGISTER_OPTIONS = {"alpaca": [], "sharegpt": ["--formatting", "sharegpt"],
                    "openai": ["--formatting", "sharegpt", "--columns", "messages=messages", "--tags",
                               "role_tag=role,content_tag=content,user_tag=user,assistant_tag=assistant,"
                               "system_tag=system"],
                    "tools": ["--formatting", "sharegpt", "--columns", "messages=conversations,tools=tools"]}
FILE_TOOLS = ("json", "jsonl", "csv")  # what dedup and split read


def made(tmp_path: Path, case: Case) -> Path:
    path = tmp_path / f"demo.{case.reader}"
    case.make(path)
    return path


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in CASES
                                  if case.fmt.name in REGISTER_FORMATS])
def test_register_refuses(case: Case, tmp_path: Path, run_cli: Run) -> None:
    path = made(tmp_path, case)
    outcome = run_cli("data", "register", path, "--name", "demo", *REGISTER_OPTIONS[case.fmt.name])
    outcome.check_refused(path.name, *case.names)
    assert not (tmp_path / "dataset_info.json").exists(), "a refused file was registered"


BROKEN = [case for case in CASES if not case.row_level and case.fmt.name == "alpaca"
          and case.reader in FILE_TOOLS and not case.id.endswith("duplicate-key")]


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in BROKEN])
@pytest.mark.parametrize("tool", ["convert", "dedup", "split"])
def test_file_tools_refuse_broken_files(tool: str, case: Case, tmp_path: Path, run_cli: Run) -> None:
    path = made(tmp_path, case)
    argv = {"convert": ["--to", "alpaca", "--map", "instruction=instruction,output=output", "--out",
                        str(tmp_path / "out.json")],
            "dedup": ["--out", str(tmp_path / "out.json")], "split": ["--val", "1"]}[tool]
    outcome = run_cli("data", tool, path, *argv)
    outcome.check_refused(path.name)


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in CASES
                                  if case.id.endswith("duplicate-key") and case.fmt.name == "alpaca"])
@pytest.mark.parametrize("tool", ["convert", "dedup", "split"])
def test_file_tools_refuse_duplicate_keys(tool: str, case: Case, tmp_path: Path, run_cli: Run) -> None:
    path = made(tmp_path, case)
    argv = {"convert": ["--to", "alpaca", "--map", "instruction=instruction,output=output", "--out",
                        str(tmp_path / "out.json")],
            "dedup": ["--out", str(tmp_path / "out.json")], "split": ["--val", "1"]}[tool]
    run_cli("data", tool, path, *argv).check_refused(path.name, "row 2", "output")


@pytest.mark.parametrize("command", ["validate", "preview", "stats", "tokenize"])
@pytest.mark.parametrize("name", ["identiti", "identity,nope"])
def test_unregistered_dataset_names(command: str, name: str, tmp_path: Path, run_cli: Run) -> None:
    data = Path(__file__).resolve().parents[3] / "examples" / "data"
    config = write_config(tmp_path, model_name_or_path="smollm2-135m-instruct", dataset=name, dataset_dir=str(data),
                          template="smollm2")
    extra = ["--out", str(tmp_path / "t.jsonl")] if command == "tokenize" else []
    run_cli("data", command, config, *extra).check_refused(name.split(",")[-1])


@pytest.mark.parametrize("command", ["validate", "tokenize"])
def test_empty_dataset_file(command: str, tmp_path: Path, run_cli: Run, tiny_model_dir: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "empty.json").write_text("[]", encoding="utf-8")
    register(folder, "empty", "empty.json", {})
    config = write_config(tmp_path, model_name_or_path=str(tiny_model_dir), dataset="empty",
                          dataset_dir=str(folder))
    extra = ["--out", str(tmp_path / "t.jsonl")] if command == "tokenize" else []
    run_cli("data", command, config, *extra).check_refused("empty.json", "no rows")
