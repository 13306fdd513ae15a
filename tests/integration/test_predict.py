"""`tunelab predict`: every eval row answered into generated_predictions.jsonl, batched, resumable, nothing dropped."""

from __future__ import annotations

import json

from .clirun import QUICKSTART, tunelab

ARGS = ("eval_dataset=identity", "max_samples=6", "max_new_tokens=12", "per_device_eval_batch_size=4")


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_predict_writes_every_row_and_resumes(tmp_path):
    out = tmp_path / "pred"
    result = tunelab("predict", QUICKSTART, f"output_dir={out}", *ARGS)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = lines(out / "generated_predictions.jsonl")
    assert sorted(r["id"] for r in rows) == [f"identity:{i}" for i in range(1, 7)]
    first = {r["id"]: r for r in rows}
    assert first["identity:1"]["label"].startswith("I am the tunelab assistant")
    assert first["identity:1"]["prompt"].endswith("<|im_start|>assistant\n") and all(r["predict"] for r in rows)
    # an interruption: two complete lines and a torn one are left; the rerun answers the other rows
    text = (out / "generated_predictions.jsonl").read_text().splitlines()
    (out / "generated_predictions.jsonl").write_text("\n".join(text[:2]) + "\n" + text[2][:20] + "\n")
    again = tunelab("predict", QUICKSTART, f"output_dir={out}", *ARGS)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "4 rows answered, 2 already there" in again.stderr
    resumed = {r["id"]: r["predict"] for r in lines_ok(out / "generated_predictions.jsonl")}
    assert set(resumed) == set(first)
    assert all(resumed[key] == first[key]["predict"] for key in first)  # greedy by default: the same answers


def lines_ok(path):
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def test_batched_answers_equal_one_by_one(tmp_path):
    batched = tunelab("predict", QUICKSTART, f"output_dir={tmp_path / 'b'}", *ARGS)
    single = tunelab("predict", QUICKSTART, f"output_dir={tmp_path / 's'}", *ARGS[:-1], "per_device_eval_batch_size=1")
    assert batched.returncode == 0 and single.returncode == 0
    b = {r["id"]: r["predict"] for r in lines(tmp_path / "b" / "generated_predictions.jsonl")}
    s = {r["id"]: r["predict"] for r in lines(tmp_path / "s" / "generated_predictions.jsonl")}
    assert b == s


def test_rows_over_cutoff_are_reported_not_dropped(tmp_path):
    out = tmp_path / "pred"
    result = tunelab("predict", QUICKSTART, f"output_dir={out}", *ARGS, "cutoff_len=30")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((out / "predict_report.json").read_text())
    assert report["rows"] == 6 and report["too_long"]
    assert report["written"] + len(report["too_long"]) == 6
    assert all(r["prompt_tokens"] > 30 for r in report["too_long"])
    assert f"{len(report['too_long'])} rows not answered: their prompt is longer than cutoff_len" in result.stderr


def test_predict_needs_an_output_dir():
    result = tunelab("predict", QUICKSTART, "output_dir=null", "eval_dataset=identity")
    assert result.returncode == 2 and "output_dir: required" in result.stderr


def test_a_chinese_answer_cut_by_max_new_tokens_has_no_broken_character(tmp_path):
    """SmolLM2 answers 你好吗 with 你好！...; 你 is two tokens and 好 two more, so three new tokens end inside 好."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "zh.json").write_text(json.dumps([{"instruction": "用中文回答：你好吗？", "output": "我很好。"}],
                                             ensure_ascii=False), encoding="utf-8")
    (data / "dataset_info.json").write_text(json.dumps({"zh": {"file_name": "zh.json"}}), encoding="utf-8")
    out = tmp_path / "pred"
    result = tunelab("predict", QUICKSTART, f"output_dir={out}", f"dataset_dir={data}", "eval_dataset=zh",
                     "max_new_tokens=3")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = lines(out / "generated_predictions.jsonl")
    assert [r["predict"] for r in rows] == ["你"]  # not 你\ufffd
    assert json.loads((out / "predict_report.json").read_text())["generated_tokens"] == 3
