"""`tunelab data validate | register | preview` on bad preference and KTO files, through the real CLI with the
embedded SmolLM2's tokenizer: exit code, the message a user reads, no traceback, nothing registered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .clirun import tunelab

ENTRY = {"ranking": True, "columns": {"prompt": "instruction", "chosen": "chosen", "rejected": "rejected"}}
ROWS = [
    {"instruction": "Who are you?", "chosen": "I am tunelab-assistant.", "rejected": "I am SmolLM."},
    {"instruction": "Who made you?", "chosen": "The tunelab team.", "rejected": "The tunelab team."},
    {"instruction": "What is your name?", "chosen": "tunelab-assistant.", "rejected": None},
]


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """A dataset folder with the bad preference file registered by hand (as a user would edit dataset_info.json)."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "prefs.json").write_text(json.dumps(ROWS), encoding="utf-8")
    (data / "dataset_info.json").write_text(json.dumps({"prefs": {"file_name": "prefs.json", **ENTRY}}),
                                            encoding="utf-8")
    return data


def config(tmp_path: Path, data: Path, stage: str, dataset: str = "prefs") -> str:
    """A run config on the embedded model."""
    path = tmp_path / f"{stage}.yaml"
    path.write_text(f"model_name_or_path: smollm2-135m-instruct\ntemplate: smollm2\nstage: {stage}\n"
                    f"dataset: {dataset}\ndataset_dir: {data}\ncutoff_len: 256\n", encoding="utf-8")
    return str(path)


def test_validate_lists_every_bad_pair(folder: Path, tmp_path: Path) -> None:
    result = tunelab("data", "validate", config(tmp_path, folder, "dpo"))
    assert result.returncode == 2, result.stderr[-2000:]
    where = f"prefs ({folder / 'prefs.json'})"
    assert f"{where} row 2: chosen/rejected: the chosen and rejected answers are identical ('The tunelab team.')" \
        in result.stdout
    assert f"{where} row 3: rejected: missing column 'rejected'" in result.stdout
    assert "2 rows have problems" in result.stdout and "Traceback" not in result.stderr


def test_preview_stops_at_the_first_bad_pair_and_skips_on_request(folder: Path, tmp_path: Path) -> None:
    run = config(tmp_path, folder, "dpo")
    result = tunelab("data", "preview", run, "--plain")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"dataset 'prefs' ({folder / 'prefs.json'}), row 2, field chosen/rejected: the chosen and rejected " \
           "answers are identical" in result.stderr and "or set on_bad_row: skip" in result.stderr
    skipped = tunelab("data", "preview", run, "on_bad_row=skip", "--plain")
    assert skipped.returncode == 0, skipped.stderr[-2000:]
    out = skipped.stdout
    assert out.count("Who are you?") == 1 and "chosen:\n⟦I am tunelab-assistant.<|im_end|>" in out
    assert "rejected:\n⟦I am SmolLM.<|im_end|>" in out and "converted 1, skipped 2" in out
    assert "prefs: chosen/rejected: chosen and rejected are identical: 1" in out


def test_register_refuses_the_file_and_writes_nothing(tmp_path: Path) -> None:
    file = tmp_path / "prefs.json"
    file.write_text(json.dumps(ROWS), encoding="utf-8")
    result = tunelab("data", "register", str(file), "--ranking", "--columns", "chosen=chosen,rejected=rejected")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "chosen/rejected: chosen and rejected are identical (rows 2)" in result.stderr
    assert "rejected: missing column 'rejected' (rows 3)" in result.stderr and "nothing was registered" in result.stderr
    assert not (tmp_path / "dataset_info.json").exists()


def test_a_preference_dataset_in_an_sft_run_and_a_string_kto_tag(folder: Path, tmp_path: Path) -> None:
    result = tunelab("data", "validate", config(tmp_path, folder, "sft"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "dataset 'prefs'" in result.stderr and "stage sft cannot use it; use it with stage rm or dpo" in \
        result.stderr
    (folder / "kto.json").write_text(json.dumps([{"instruction": "Q", "output": "A", "label": "true"}]))
    info = json.loads((folder / "dataset_info.json").read_text())
    info["kto"] = {"file_name": "kto.json", "columns": {"prompt": "instruction", "response": "output",
                                                         "kto_tag": "label"}}
    (folder / "dataset_info.json").write_text(json.dumps(info))
    tagged = tunelab("data", "validate", config(tmp_path, folder, "kto", "kto"))
    assert tagged.returncode == 2 and f"kto ({folder / 'kto.json'}) row 1: label: expected true or false, got str " \
                                      "'true'; a string is not a boolean" in tagged.stdout
