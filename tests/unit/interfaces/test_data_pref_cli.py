"""`tunelab data tokenize | preview | validate | register` on preference (rm, dpo), KTO and prompt (ppo) data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tunelab.interfaces.cli import main

Capture = pytest.CaptureFixture[str]
RANKING = {"ranking": True, "columns": {"prompt": "instruction", "chosen": "chosen", "rejected": "rejected"}}
KTO = {"columns": {"prompt": "instruction", "response": "output", "kto_tag": "label"}}
PAIRS = [{"instruction": f"Question {i}?", "chosen": f"Good answer {i}.", "rejected": f"Bad answer {i}."}
         for i in range(3)]
FEEDBACK = [{"instruction": f"Question {i}?", "output": f"Answer {i}.", "label": i % 2 == 0} for i in range(3)]


@pytest.fixture()
def config(tmp_path: Path, tiny_model_dir: Path, data_dir: Path) -> Any:
    """A config writer: config(stage, dataset) -> the YAML path."""

    def write(stage: str, dataset: str = "demo") -> Path:
        path = tmp_path / f"{stage}.yaml"
        path.write_text(f"model_name_or_path: {tiny_model_dir}\nstage: {stage}\ndataset: {dataset}\n"
                        f"dataset_dir: {data_dir}\ncutoff_len: 64\n", encoding="utf-8")
        return path

    return write


def tokenized(config: Path, tmp_path: Path) -> list[dict[str, Any]]:
    out = tmp_path / "tok.jsonl"
    assert main(["data", "tokenize", str(config), "--out", str(out)]) == 0
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.mark.parametrize("stage", ["rm", "dpo"])
def test_tokenize_a_pair_stage_writes_llamafactory_columns(stage: str, config: Any, make_dataset: Any,
                                                           tmp_path: Path) -> None:
    make_dataset(PAIRS, entry=RANKING)
    lines = tokenized(config(stage), tmp_path)
    assert len(lines) == 3
    assert set(lines[0]) == {"split", "chosen_input_ids", "chosen_labels", "rejected_input_ids", "rejected_labels"}
    first = lines[0]
    prompt = first["chosen_labels"].count(-100)
    assert first["chosen_input_ids"][:prompt] == first["rejected_input_ids"][:prompt]
    assert prompt == first["rejected_labels"].count(-100) > 0


def test_tokenize_kto_writes_llamafactory_columns_and_tags(config: Any, make_dataset: Any, tmp_path: Path) -> None:
    make_dataset(FEEDBACK, entry=KTO)
    lines = tokenized(config("kto"), tmp_path)
    assert set(lines[0]) == {"split", "input_ids", "labels", "kl_input_ids", "kl_labels", "kto_tags"}
    assert [line["kto_tags"] for line in lines] == [True, False, True]
    # the KL partner of row i is row i-1's answer to row i's prompt (the first takes the batch's last)
    assert lines[1]["kl_input_ids"][-5:] == lines[0]["input_ids"][-5:]


def test_tokenize_ppo_writes_prompts_and_reference_answers(config: Any, make_dataset: Any, tmp_path: Path) -> None:
    make_dataset([{"instruction": "Question?", "output": "Answer."}])
    (line,) = tokenized(config("ppo"), tmp_path)
    assert set(line) == {"split", "input_ids", "labels"} and -100 not in line["labels"]


def test_preview_shows_the_prompt_once_then_both_answers(config: Any, make_dataset: Any, capsys: Capture) -> None:
    make_dataset(PAIRS, entry=RANKING)
    assert main(["data", "preview", str(config("dpo")), "--rows", "1", "--plain"]) == 0
    out = capsys.readouterr().out
    assert out.count("Question 0?") == 1
    chosen, rejected = out.index("chosen:\n⟦Good answer 0.<|im_end|>"), out.index("rejected:\n⟦Bad answer 0.<|im_end|>")
    assert out.index("prompt:") < chosen < rejected
    assert "pair 1: prompt" in out and "pair 2" not in out


def test_preview_shows_a_kto_row_with_its_tag_and_kl_partner(config: Any, make_dataset: Any, capsys: Capture) -> None:
    make_dataset(FEEDBACK, entry=KTO)
    assert main(["data", "preview", str(config("kto")), "--rows", "2", "--plain"]) == 0
    out = capsys.readouterr().out
    assert "example 1: desirable (kto_tag true)" in out and "example 2: undesirable (kto_tag false)" in out
    second = out[out.index("example 2"):]
    assert "⟦Answer 1.<|im_end|>" in second
    assert "KL partner's answer (scored for the KL estimate, not learned):\n⟦Answer 0.<|im_end|>" in second


def test_preview_shows_a_prompt_and_its_reference(config: Any, make_dataset: Any, capsys: Capture) -> None:
    make_dataset([{"instruction": "Question?", "output": "Answer."}])
    assert main(["data", "preview", str(config("grpo")), "--plain"]) == 0
    out = capsys.readouterr().out
    assert "prompt 1:" in out and "reference answer:\nAnswer." in out


def test_validate_lists_every_identical_pair(config: Any, make_dataset: Any, capsys: Capture) -> None:
    same = {"instruction": "Q", "chosen": "Same.", "rejected": "Same."}
    make_dataset([PAIRS[0], same, PAIRS[1], same], entry=RANKING)
    assert main(["data", "validate", str(config("dpo"))]) == 2
    out = capsys.readouterr().out
    assert "demo.json) row 2: chosen/rejected: the chosen and rejected answers are identical ('Same.')" in out
    assert "demo.json) row 4:" in out and "chosen/rejected: chosen and rejected are identical: 2" in out


def test_validate_a_sft_dataset_in_a_dpo_run_names_it(config: Any, make_dataset: Any, capsys: Capture) -> None:
    make_dataset([{"instruction": "Q", "output": "A"}])
    assert main(["data", "validate", str(config("dpo"))]) == 2
    err = capsys.readouterr().err
    assert "dataset 'demo'" in err and "stage dpo needs a ranking dataset" in err and "Traceback" not in err


@pytest.mark.parametrize(("rows", "entry", "args", "says"), [
    ([PAIRS[0], {"instruction": "Q", "chosen": "Same.", "rejected": "Same."}], None,
     ["--ranking", "--columns", "chosen=chosen,rejected=rejected"],
     "chosen/rejected: chosen and rejected are identical (rows 2)"),
    ([{"instruction": "Q", "output": "A", "label": "true"}, {"instruction": "Q", "output": "B", "label": 0}], None,
     ["--columns", "kto_tag=label"], "label: kto_tag is not a boolean (rows 1, 2)"),
])
def test_register_refuses_bad_preference_rows(rows: list[dict[str, Any]], entry: Any, args: list[str], says: str,
                                              tmp_path: Path, capsys: Capture) -> None:
    file = tmp_path / "prefs.json"
    file.write_text(json.dumps(rows), encoding="utf-8")
    assert main(["data", "register", str(file), *args]) == 2
    err = capsys.readouterr().err
    assert says in err and "nothing was registered" in err and "Traceback" not in err
    assert not (tmp_path / "dataset_info.json").exists()


def test_register_accepts_good_pairs_with_their_sha1(tmp_path: Path, capsys: Capture) -> None:
    file = tmp_path / "prefs.json"
    file.write_text(json.dumps(PAIRS), encoding="utf-8")
    assert main(["data", "register", str(file), "--ranking", "--columns", "chosen=chosen,rejected=rejected"]) == 0
    entry = json.loads((tmp_path / "dataset_info.json").read_text())["prefs"]
    assert entry["ranking"] is True and len(entry["file_sha1"]) == 40


@pytest.mark.parametrize(("stage", "entry", "rows"), [("dpo", RANKING, PAIRS), ("kto", KTO, FEEDBACK),
                                                      ("ppo", None, [{"instruction": "Q?", "output": "A."}])])
def test_stats_of_the_preference_kinds(stage: str, entry: Any, rows: list[dict[str, Any]], config: Any,
                                       make_dataset: Any, tmp_path: Path, capsys: Capture) -> None:
    make_dataset(rows, entry=entry)
    assert main(["data", "stats", str(config(stage)), "--png", str(tmp_path / "lengths.png")]) == 0
    out = capsys.readouterr().out
    assert f"0 of {len(rows)} examples are longer than cutoff_len 64" in out and (tmp_path / "lengths.png").is_file()
    response = out[out.index("response: min "):].split(",")[0]
    assert int(response.removeprefix("response: min ")) > 0
