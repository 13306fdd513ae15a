"""`tunelab data convert | register | dedup | split` through the real entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tunelab.data.registry import sha1_of
from tunelab.interfaces.cli import main

Capture = pytest.CaptureFixture[str]


def workbook(path: Path) -> Path:
    """An Excel file as people make them: Chinese headers, a cell with a line break, integers, an empty answer."""
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "问答"
    sheet.append(["问题", "答案", "备注"])
    sheet.append(["第一行\n第二行", 42, None])
    sheet.append(["没有答案", None, "x"])
    sheet.append([])  # a blank row in the middle is skipped
    sheet.append(["浮点", 3.0, "系统"])
    other = book.create_sheet("英文")
    other.append(["question", "answer"])
    other.append(["hi", "hello"])
    book.save(path)
    return path


def read_json(path: Path) -> object:
    return json.loads(path.read_text(encoding="utf-8"))


def jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_convert_xlsx_to_alpaca_and_register(tmp_path: Path, capsys: Capture) -> None:
    out = tmp_path / "qa.json"
    code = main(["data", "convert", str(workbook(tmp_path / "qa.xlsx")), "--to", "alpaca",
                 "--map", "instruction=问题,output=答案", "--out", str(out), "--name", "qa"])
    assert code == 0
    assert read_json(out) == [{"instruction": "第一行\n第二行", "input": "", "output": "42"},
                              {"instruction": "浮点", "input": "", "output": "3"}]
    assert out.read_text(encoding="utf-8").startswith('[\n  {\n    "instruction": "第一行\\n第二行"')
    printed = capsys.readouterr().out
    assert f"wrote 2 rows to {out} (alpaca)" in printed
    assert "1 rows with an empty output, not written; pass --keep-empty to keep them: sheet rows 3" in printed
    assert read_json(tmp_path / "dataset_info.json") == {"qa": {"file_name": "qa.json", "file_sha1": sha1_of(out)}}


def test_convert_to_sharegpt_jsonl_keeps_empty_and_system(tmp_path: Path, capsys: Capture) -> None:
    out = tmp_path / "qa.jsonl"
    assert main(["data", "convert", str(workbook(tmp_path / "qa.xlsx")), "--to", "sharegpt", "--map",
                 "instruction=问题,output=答案,system=备注", "--out", str(out), "--keep-empty", "--register"]) == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 3 and rows[1] == {"conversations": [{"from": "human", "value": "没有答案"},
                                                           {"from": "gpt", "value": ""}], "system": "x"}
    assert "kept (--keep-empty)" in capsys.readouterr().out
    entry = read_json(tmp_path / "dataset_info.json")["qa"]
    assert entry["formatting"] == "sharegpt" and entry["columns"] == {"messages": "conversations", "system": "system"}


def test_convert_picks_a_sheet_and_reads_csv(tmp_path: Path) -> None:
    out = tmp_path / "en.jsonl"
    book = workbook(tmp_path / "qa.xlsx")
    assert main(["data", "convert", str(book), "--sheet", "英文", "--to", "alpaca", "--map",
                 "instruction=question,output=answer", "--out", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8")) == {"instruction": "hi", "input": "", "output": "hello"}
    csv_file = tmp_path / "qa.csv"
    csv_file.write_text('问题,答案\n"多行\n问题",答\n', encoding="utf-8")
    assert main(["data", "convert", str(csv_file), "--to", "alpaca", "--map", "instruction=问题,output=答案",
                 "--out", str(out)]) == 0
    assert json.loads(out.read_text(encoding="utf-8"))["instruction"] == "多行\n问题"


def test_convert_missing_column_lists_the_columns(tmp_path: Path, capsys: Capture) -> None:
    book = workbook(tmp_path / "qa.xlsx")
    code = main(["data", "convert", str(book), "--to", "alpaca", "--map", "instruction=问题,output=答", "--out",
                 str(tmp_path / "o.json")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.strip() == (f"tunelab: error: {book} (sheet 问答): --map output=答 names no column '答'; the columns "
                           "are: 问题, 答案, 备注; did you mean 答案?; correct the --map")
    assert not (tmp_path / "o.json").exists()
    assert main(["data", "convert", str(book), "--sheet", "问", "--to", "alpaca", "--map",
                 "instruction=问题,output=答案", "--out", str(tmp_path / "o.json")]) == 2
    assert "no sheet '问'; did you mean 问答?; use one of: 问答, 英文" in capsys.readouterr().err


def test_register_adds_updates_and_keeps_other_entries(tmp_path: Path, capsys: Capture) -> None:
    (tmp_path / "dataset_info.json").write_text(json.dumps({"z_first": {"file_name": "z.json"}}), encoding="utf-8")
    data = jsonl(tmp_path / "d.jsonl", [{"instruction": "q", "output": "a"}])
    assert main(["data", "register", str(data), "--name", "demo"]) == 0
    first_sha1 = sha1_of(data)
    assert f"demo: added in {tmp_path / 'dataset_info.json'}" in capsys.readouterr().out
    jsonl(data, [{"instruction": "q", "output": "a"}, {"instruction": "q2", "output": "a2"}])
    assert main(["data", "register", str(data), "--name", "demo"]) == 0
    assert f"demo: updated (was: file_sha1=\"{first_sha1}\")" in capsys.readouterr().out
    registry = read_json(tmp_path / "dataset_info.json")
    assert list(registry) == ["z_first", "demo"]
    assert registry["demo"] == {"file_name": "d.jsonl", "file_sha1": sha1_of(data)}


def test_register_refuses_a_name_of_another_file_unless_forced(tmp_path: Path, capsys: Capture) -> None:
    rows = [{"instruction": "q", "output": "a"}]
    jsonl(tmp_path / "a.jsonl", rows)
    other = jsonl(tmp_path / "b.jsonl", rows)
    assert main(["data", "register", str(tmp_path / "a.jsonl"), "--name", "demo"]) == 0
    assert main(["data", "register", str(other), "--name", "demo"]) == 2
    assert "the name 'demo' is already used for a.jsonl; choose another --name, or pass --force" in \
        capsys.readouterr().err
    assert main(["data", "register", str(other), "--name", "demo", "--force"]) == 0
    assert 'updated (was: file_name="a.jsonl"' in capsys.readouterr().out


def test_register_checks_columns_and_messages(tmp_path: Path, capsys: Capture) -> None:
    data = jsonl(tmp_path / "d.jsonl", [{"question": "q", "answer": "a"}, {"question": "q2"}])
    assert main(["data", "register", str(data), "--name", "d"]) == 2
    assert "no field 'output' (rows 1, 2)" in capsys.readouterr().err
    assert main(["data", "register", str(data), "--name", "d", "--columns", "prompt=question,response=answer"]) == 2
    assert "no field 'answer' (rows 2)" in capsys.readouterr().err
    chat = jsonl(tmp_path / "chat.jsonl", [{"messages": [{"role": "user", "content": "hi"},
                                                         {"role": "assistant", "content": "hello"}]}])
    assert main(["data", "register", str(chat), "--name", "chat", "--formatting", "sharegpt",
                 "--columns", "messages=messages"]) == 2
    assert "a message without 'from' and 'value' keys (has: role, content) (rows 1)" in capsys.readouterr().err
    assert main(["data", "register", str(chat), "--name", "chat", "--formatting", "openai"]) == 0
    entry = read_json(tmp_path / "dataset_info.json")["chat"]
    assert entry["formatting"] == "openai" and entry["columns"] == {"messages": "messages"}
    assert entry["tags"]["role_tag"] == "role" and entry["tags"]["assistant_tag"] == "assistant"


def test_dedup_groups_normalised_duplicates_and_writes(tmp_path: Path, capsys: Capture) -> None:
    data = jsonl(tmp_path / "d.jsonl", [
        {"instruction": "你好，世界！", "output": "Hi"}, {"instruction": "Hello World", "output": "x"},
        {"instruction": "你好,世界!", "output": "Hi"}, {"instruction": "ＨＥＬＬＯ　world", "output": "x"},
        {"instruction": "你好，世界！", "output": "Hi"}, {"instruction": "unique", "output": "u"}])
    out, report = tmp_path / "clean.json", tmp_path / "report.json"
    assert main(["data", "dedup", str(data), "--out", str(out), "--report", str(report)]) == 0
    printed = capsys.readouterr().out
    assert "group 1 (normalised, 3 rows): rows 1, 3, 5: 你好，世界！ | Hi" in printed
    assert "group 2 (normalised, 2 rows): rows 2, 4: Hello World | x" in printed
    assert "6 rows, 2 duplicate groups (0 exact, 2 normalised; normalize=punct), 3 duplicate rows, 3 unique" in printed
    assert [r["instruction"] for r in read_json(out)] == ["你好，世界！", "Hello World", "unique"]
    assert read_json(report)["groups"][0]["rows"] == [1, 3, 5]
    assert main(["data", "dedup", str(data), "--normalize", "none"]) == 0
    printed = capsys.readouterr().out
    assert "group 1 (exact, 2 rows): rows 1, 5" in printed and "1 duplicate groups (1 exact" in printed
    assert main(["data", "dedup", str(data), "--key", "instrucion"]) == 2
    assert "--key instrucion: no row has that field; did you mean instruction?" in capsys.readouterr().err


def test_split_is_reproducible_with_a_seed(tmp_path: Path, capsys: Capture) -> None:
    data = jsonl(tmp_path / "n.jsonl", [{"instruction": f"q{i}", "output": "a"} for i in range(20)])
    for folder, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        assert main(["data", "split", str(data), "--val", "0.2", "--test", "2", "--seed", seed,
                     "--out-dir", str(tmp_path / folder)]) == 0
    printed = capsys.readouterr().out
    assert f"train: 14 rows -> {tmp_path / 'a' / 'n_train.jsonl'}" in printed and "val: 4 rows" in printed
    texts = {f: [(tmp_path / f / f"n_{p}.jsonl").read_text(encoding="utf-8") for p in ("train", "val", "test")]
             for f in "abc"}
    assert texts["a"] == texts["b"] and texts["a"] != texts["c"]
    assert sum(len(t.splitlines()) for t in texts["a"]) == 20


def test_split_registers_parts_and_rejects_too_many_rows(tmp_path: Path, capsys: Capture) -> None:
    data = tmp_path / "t.csv"
    data.write_text("instruction,output\n" + "".join(f"q{i},a{i}\n" for i in range(10)), encoding="utf-8")
    assert main(["data", "split", str(data), "--val", "3", "--register"]) == 0
    assert (tmp_path / "t_val.csv").read_text(encoding="utf-8").startswith("instruction,output\n")
    assert list(read_json(tmp_path / "dataset_info.json")) == ["t_train", "t_val"]
    capsys.readouterr()
    assert main(["data", "split", str(data), "--val", "6", "--test", "0.4"]) == 2
    assert "asked for 6 val + 4 test rows but the file has 10 rows" in capsys.readouterr().err


def test_register_never_maps_a_column_twice_and_says_what_it_inferred(tmp_path: Path, capsys: Capture) -> None:
    # issue 21: input/output rows registered with prompt=input got "query": "input" too, so every prompt held its
    # text twice
    data = jsonl(tmp_path / "qa.jsonl", [{"input": f"q{i}", "output": f"a{i}"} for i in range(4)])
    assert main(["data", "register", str(data), "--name", "qa", "--columns", "prompt=input,response=output"]) == 0
    assert "inferred" not in capsys.readouterr().out
    assert read_json(tmp_path / "dataset_info.json")["qa"]["columns"] == {"prompt": "input", "response": "output"}
    both = jsonl(tmp_path / "both.jsonl", [{"instruction": "q", "input": "x", "output": "a", "answer": "b"}])
    assert main(["data", "register", str(both), "--name", "both", "--columns", "response=answer"]) == 0
    assert "note: columns inferred from the file's fields: prompt=instruction, query=input; remove any you do not " \
           "want with --columns KEY= (e.g. --columns prompt=)" in capsys.readouterr().out
    assert read_json(tmp_path / "dataset_info.json")["both"]["columns"] == {
        "prompt": "instruction", "query": "input", "response": "answer"}
    assert main(["data", "register", str(both), "--name", "both", "--columns", "prompt=input"]) == 0
    assert read_json(tmp_path / "dataset_info.json")["both"]["columns"] == {"prompt": "input", "response": "answer"}


def test_register_refuses_an_entry_that_reads_a_column_twice(tmp_path: Path, capsys: Capture) -> None:
    data = jsonl(tmp_path / "qa.jsonl", [{"input": "q", "output": "a"}])
    (tmp_path / "dataset_info.json").write_text(json.dumps({"qa": {"file_name": "qa.jsonl", "columns": {
        "prompt": "input", "query": "input", "response": "output"}}}), encoding="utf-8")
    assert main(["data", "register", str(data), "--name", "qa", "--columns", "response=output"]) == 2
    assert "columns prompt and query both read the field 'input'" in capsys.readouterr().err
    assert main(["data", "register", str(data), "--name", "qa", "--columns", "query="]) == 0


def test_split_register_keeps_the_source_columns_as_they_stand(tmp_path: Path, capsys: Capture) -> None:
    data = jsonl(tmp_path / "qa.jsonl", [{"instruction": "sys", "input": f"q{i}", "output": f"a{i}"}
                                         for i in range(6)])
    assert main(["data", "register", str(data), "--name", "qa", "--columns", "prompt=input,response=output"]) == 0
    assert main(["data", "split", str(data), "--val", "2", "--register"]) == 0
    registry = read_json(tmp_path / "dataset_info.json")
    assert registry["qa"]["columns"] == {"prompt": "input", "response": "output"}
    assert registry["qa_train"]["columns"] == registry["qa_val"]["columns"] == registry["qa"]["columns"]
    assert "inferred" not in capsys.readouterr().out
