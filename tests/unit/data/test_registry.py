"""dataset_info.json lookups: every error names the file or entry and says what to do."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import time
import types
from pathlib import Path
from typing import Any

import pytest

from tunelab.data.errors import DataError
from tunelab.data import hub
from tunelab.data.registry import Columns, DatasetEntry, Tags, lookup, sha1_note, sha1_of

ROWS = [{"instruction": "Hello there", "output": "I am fine"}]


def test_lookup_resolves_names_to_files(make_dataset: Any, data_dir: Path) -> None:
    make_dataset(ROWS, name="a", file_name="a.json")
    make_dataset(ROWS, name="b", file_name="b.jsonl", entry={"columns": {"prompt": "q", "response": "r"}})
    found = lookup(["b", "a"], data_dir)
    assert [d.name for d in found] == ["b", "a"]
    assert found[0].path == data_dir / "b.jsonl"
    # a given "columns" object leaves the other columns unset (None), as LLaMA-Factory's DatasetAttr.join does
    assert found[0].entry.columns.prompt == "q" and found[0].entry.columns.query is None
    assert found[1].entry.columns.query == "input"
    assert found[1].entry.formatting == "alpaca"


def test_missing_dataset_info_says_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(DataError) as excinfo:
        lookup(["demo"], tmp_path)
    assert str(excinfo.value) == (f"{tmp_path / 'dataset_info.json'}: no dataset_info.json in {tmp_path}; set "
                                  "dataset_dir to the folder holding it, or create one with `tunelab data register`")


def test_unknown_dataset_name_suggests_and_lists_the_entries(make_dataset: Any, data_dir: Path) -> None:
    make_dataset(ROWS, name="identity")
    make_dataset(ROWS, name="alpaca_en", file_name="en.json")
    with pytest.raises(DataError) as excinfo:
        lookup(["identiy"], data_dir)
    message = str(excinfo.value)
    assert f"no entry named 'identiy' in {data_dir / 'dataset_info.json'}; did you mean identity?" in message
    assert "use one of: alpaca_en, identity" in message


def test_unknown_entry_key_suggests_the_right_one(make_dataset: Any, data_dir: Path) -> None:
    make_dataset(ROWS, entry={"formating": "alpaca"})
    with pytest.raises(DataError) as excinfo:
        lookup(["demo"], data_dir)
    assert str(excinfo.value) == (f"dataset 'demo' ({data_dir / 'dataset_info.json'}): unknown key 'formating'; "
                                  "did you mean formatting?; remove it or correct its name")


def test_unknown_column_key_is_named_with_its_path(make_dataset: Any, data_dir: Path) -> None:
    make_dataset(ROWS, entry={"columns": {"promt": "question"}})
    with pytest.raises(DataError) as excinfo:
        lookup(["demo"], data_dir)
    assert "unknown key 'columns.promt'; did you mean prompt?" in str(excinfo.value)


def test_wrong_value_in_an_entry_is_named(make_dataset: Any, data_dir: Path) -> None:
    make_dataset(ROWS, entry={"formatting": "alpacca"})
    with pytest.raises(DataError) as excinfo:
        lookup(["demo"], data_dir)
    message = str(excinfo.value)
    assert message.startswith("dataset 'demo' (")
    assert "key 'formatting': input should be 'alpaca', 'sharegpt' or 'openai' (got 'alpacca')" in message


def test_missing_data_file_names_the_entry_and_the_fix(make_dataset: Any, data_dir: Path) -> None:
    make_dataset(ROWS)
    (data_dir / "demo.json").unlink()
    with pytest.raises(DataError) as excinfo:
        lookup(["demo"], data_dir)
    assert str(excinfo.value) == (f"dataset 'demo', field file_name: file {data_dir / 'demo.json'} does not exist; "
                                  f"put the file in {data_dir} or correct file_name in dataset_info.json")


def test_entry_without_file_or_hub_url(data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / "dataset_info.json").write_text('{"demo": {"formatting": "alpaca"}}')
    with pytest.raises(DataError) as excinfo:
        lookup(["demo"], data_dir)
    assert "the entry has no file_name and no hub URL" in str(excinfo.value)
    assert 'add "file_name": "your_file.json"' in str(excinfo.value)


def test_bad_json_in_dataset_info_names_the_line(data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / "dataset_info.json").write_text('{\n  "demo": {\n    "file_name": "demo.json",\n  }\n}\n')
    with pytest.raises(DataError) as excinfo:
        lookup(["demo"], data_dir)
    message = str(excinfo.value)
    assert message.startswith(f"{data_dir / 'dataset_info.json'}: not valid JSON at line 4, column 3")
    assert message.endswith("; fix the JSON syntax")


def test_dataset_info_must_be_an_object(data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / "dataset_info.json").write_text('["demo"]')
    with pytest.raises(DataError, match="must be a JSON object of dataset names to entries"):
        lookup(["demo"], data_dir)


def test_sha1_of_matches_hashlib(make_dataset: Any) -> None:
    path = make_dataset(ROWS)
    assert sha1_of(path) == hashlib.sha1(path.read_bytes()).hexdigest()


def test_an_entry_that_is_not_an_object_is_named(data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / "dataset_info.json").write_text('{"demo": "demo.json"}')
    with pytest.raises(DataError, match="dataset 'demo'"):
        lookup(["demo"], data_dir)


def test_non_utf8_dataset_info_is_a_data_error(data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / "dataset_info.json").write_bytes('{"demo": {"file_name": "caf\xe9.json"}}'.encode("latin-1"))
    with pytest.raises(DataError, match="dataset_info.json"):
        lookup(["demo"], data_dir)


def write_info(data_dir: Path, info: dict[str, Any]) -> None:
    data_dir.mkdir(exist_ok=True)
    (data_dir / "dataset_info.json").write_text(json.dumps(info), encoding="utf-8")


# ---- every key of LLaMA-Factory 0.9.5's parser, with its defaults ----
# The expected values were produced by llamafactory.data.parser.get_dataset_list on the same entries.

ALL_KEYS = {
    "file_name": "demo.json", "formatting": "sharegpt", "ranking": True, "subset": "en", "split": "test",
    "folder": "sub", "num_samples": 3, "file_sha1": "0" * 40,
    "columns": {"prompt": "p", "query": "q", "response": "r", "history": "h", "system": "s", "tools": "t",
                "messages": "m", "images": "i", "videos": "v", "audios": "a", "chosen": "c", "rejected": "x",
                "kto_tag": "k"},
    "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
             "observation_tag": "tool", "function_tag": "call", "system_tag": "sys"}}


def test_every_llamafactory_key_is_accepted(make_dataset: Any, data_dir: Path) -> None:
    make_dataset(ROWS, entry={k: v for k, v in ALL_KEYS.items() if k != "file_name"})
    entry = lookup(["demo"], data_dir)[0].entry
    assert entry.model_dump(exclude={"hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name"}) == \
        ALL_KEYS


def test_hub_keys_are_accepted(data_dir: Path) -> None:
    write_info(data_dir, {"demo": {"hf_hub_url": "a/b", "ms_hub_url": "c/d", "om_hub_url": "e/f",
                                   "script_url": "s", "cloud_file_name": "s3://bucket/x.json"}})
    found = lookup(["demo"], data_dir)[0]
    assert (found.source, found.target, found.path) == ("hf_hub", "a/b", None)


def test_defaults_without_columns_and_tags_are_llamafactorys() -> None:
    entry = DatasetEntry(file_name="d.json")
    assert (entry.formatting, entry.ranking, entry.subset, entry.split, entry.folder, entry.num_samples) == \
        ("alpaca", False, None, "train", None, None)
    assert entry.columns.model_dump() == {
        "prompt": "instruction", "query": "input", "response": "output", "history": None, "system": None,
        "tools": None, "messages": "conversations", "images": None, "videos": None, "audios": None, "chosen": None,
        "rejected": None, "kto_tag": None}
    assert entry.tags.model_dump() == {
        "role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
        "observation_tag": "observation", "function_tag": "function_call", "system_tag": "system"}


def test_given_columns_and_tags_unset_the_rest_as_llamafactory_does() -> None:
    # LLaMA-Factory's ultrachat_200k entry: no system_tag, so a leading system message is not taken as the system
    entry = DatasetEntry(formatting="sharegpt", hf_hub_url="HuggingFaceH4/ultrachat_200k", split="train_sft",
                         columns={"messages": "messages"},
                         tags={"role_tag": "role", "content_tag": "content", "user_tag": "user",
                               "assistant_tag": "assistant"})
    assert entry.columns == Columns(**{**dict.fromkeys(Columns.model_fields), "messages": "messages"})
    assert entry.tags == Tags(role_tag="role", content_tag="content", user_tag="user", assistant_tag="assistant",
                              observation_tag=None, function_tag=None, system_tag=None)
    # wiki_demo: a pre-training text file maps only the prompt
    wiki = DatasetEntry(file_name="wiki_demo.txt", columns={"prompt": "text"})
    assert (wiki.columns.prompt, wiki.columns.query, wiki.columns.response, wiki.columns.messages) == \
        ("text", None, None, None)


def test_openai_formatting_keeps_the_sharegpt_tag_defaults_as_llamafactory_does() -> None:
    entry = DatasetEntry(file_name="o.json", formatting="openai")
    assert entry.tags == Tags() and entry.tags.role_tag == "from" and entry.tags.user_tag == "human"
    assert entry.columns.messages == "conversations"


def test_a_tag_may_be_null(make_dataset: Any, data_dir: Path) -> None:
    make_dataset(ROWS, entry={"formatting": "sharegpt", "tags": {"system_tag": None}})
    tags = lookup(["demo"], data_dir)[0].entry.tags
    assert tags.system_tag is None and tags.role_tag is None


def test_unknown_tag_key_suggests_within_tags(make_dataset: Any, data_dir: Path) -> None:
    make_dataset(ROWS, entry={"tags": {"role": "role"}})
    with pytest.raises(DataError, match=r"unknown key 'tags.role'; did you mean role_tag\?"):
        lookup(["demo"], data_dir)


def test_a_column_key_at_the_top_level_is_pointed_into_columns(make_dataset: Any, data_dir: Path) -> None:
    make_dataset(ROWS, entry={"prompt": "question"})
    with pytest.raises(DataError) as excinfo:
        lookup(["demo"], data_dir)
    assert "unknown key 'prompt'; it belongs inside 'columns': \"columns\": {\"prompt\": ...}" in str(excinfo.value)


def test_num_samples_must_be_positive(make_dataset: Any, data_dir: Path) -> None:
    make_dataset(ROWS, entry={"num_samples": 0})
    with pytest.raises(DataError, match="key 'num_samples': input should be greater than or equal to 1 \\(got 0\\)"):
        lookup(["demo"], data_dir)


def test_source_order_is_llamafactorys(data_dir: Path) -> None:
    write_info(data_dir, {"both": {"hf_hub_url": "h/x", "ms_hub_url": "m/x", "file_name": "ignored.json"},
                          "ms": {"ms_hub_url": "m/y"}, "om": {"om_hub_url": "o/z", "hf_hub_url": "h/z"},
                          "script": {"script_url": "folder", "cloud_file_name": "s3://b/k"},
                          "cloud": {"cloud_file_name": "s3://b/k", "file_name": "ignored.json"}})
    found = {d.name: (d.source, d.target) for d in lookup(["both", "ms", "om", "script", "cloud"], data_dir)}
    assert found == {"both": ("hf_hub", "h/x"), "ms": ("ms_hub", "m/y"), "om": ("hf_hub", "h/z"),
                     "script": ("script", "folder"), "cloud": ("cloud_file", "s3://b/k")}
    flags = lookup(["both", "om"], data_dir, use_modelscope=True, use_openmind=True)
    assert [(d.source, d.target) for d in flags] == [("ms_hub", "m/x"), ("om_hub", "o/z")]


def test_file_sha1_mismatch_is_a_visible_note(make_dataset: Any, data_dir: Path) -> None:
    path = make_dataset(ROWS, entry={"file_sha1": "0" * 40})
    note = sha1_note(lookup(["demo"], data_dir)[0])
    assert note == (f"file_sha1 in dataset_info.json is {'0' * 40} but the file's is {sha1_of(path)}: "
                    "the file changed since it was registered; update file_sha1 (or remove it) once you have "
                    "checked the file")
    make_dataset(ROWS, entry={"file_sha1": sha1_of(path).upper()})
    assert sha1_note(lookup(["demo"], data_dir)[0]) is None


# ---- rows of every source (hub.dataset_rows) ----

def test_rows_of_a_local_file_and_of_an_xlsx_sheet_named_by_subset(make_dataset: Any, data_dir: Path) -> None:
    from openpyxl import Workbook

    make_dataset(ROWS)
    book = Workbook()
    book.active.title = "first"
    book.create_sheet("second").append(["instruction", "output"])
    book["second"].append(["q", "a"])
    book.save(data_dir / "book.xlsx")
    info = json.loads((data_dir / "dataset_info.json").read_text())
    info["sheet"] = {"file_name": "book.xlsx", "subset": "second"}
    write_info(data_dir, info)
    demo, sheet = lookup(["demo", "sheet"], data_dir)
    assert hub.dataset_rows(demo) == ROWS
    assert list(hub.dataset_rows(demo, streaming=True)) == ROWS and not isinstance(
        hub.dataset_rows(demo, streaming=True), list)
    assert hub.dataset_rows(sheet) == [{"instruction": "q", "output": "a"}]


def test_script_url_may_name_a_local_folder_of_data_files(data_dir: Path, tmp_path: Path) -> None:
    folder = data_dir / "my_set"
    folder.mkdir(parents=True)
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS * 2), encoding="utf-8")
    (folder / "test.jsonl").write_text(json.dumps({"instruction": "t", "output": "u"}) + "\n", encoding="utf-8")
    write_info(data_dir, {"local": {"script_url": "my_set"}, "local_test": {"script_url": "my_set", "split": "test"},
                          "bad_split": {"script_url": "my_set", "split": "dev"}})
    local, local_test, bad_split = lookup(["local", "local_test", "bad_split"], data_dir)
    cache = str(tmp_path / "hf-cache")
    assert hub.dataset_rows(local, cache_dir=cache) == ROWS * 2
    assert hub.dataset_rows(local_test, cache_dir=cache) == [{"instruction": "t", "output": "u"}]
    assert list(hub.dataset_rows(local, cache_dir=cache, streaming=True)) == ROWS * 2
    with pytest.raises(DataError) as excinfo:
        hub.dataset_rows(bad_split, cache_dir=cache)
    assert f"dataset 'bad_split', field split: {folder} has no split 'dev'" in str(excinfo.value)


@pytest.fixture
def hub_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE=1 as the libraries see it (they read the variable once, at import)."""
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)


def test_an_unreachable_hub_names_the_dataset_the_url_and_the_way_out(hub_offline: None, data_dir: Path,
                                                                      tmp_path: Path) -> None:
    write_info(data_dir, {"alpaca_en": {"hf_hub_url": "llamafactory/alpaca_en"}})
    entry = lookup(["alpaca_en"], data_dir)[0]
    start = time.monotonic()
    with pytest.raises(DataError) as excinfo:
        hub.dataset_rows(entry, cache_dir=str(tmp_path / "hf-cache"))
    assert time.monotonic() - start < 30  # no retries against an unreachable network
    message = str(excinfo.value)
    assert message.startswith("dataset 'alpaca_en', field hf_hub_url: cannot reach ")
    assert "/datasets/llamafactory/alpaca_en (ConnectionError" in message
    assert ("download the data on a machine that is online, put the file next to dataset_info.json and set file_name "
            "instead of hf_hub_url; HF_HUB_OFFLINE is set, so only datasets already in the cache load") in message
    assert excinfo.value.kind == "hub unreachable"


def test_modelscope_not_installed_is_a_clear_error(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "modelscope", None)  # import fails even where it is installed
    write_info(data_dir, {"ms": {"ms_hub_url": "AI-ModelScope/x"}, "om": {"om_hub_url": "HaM/y"}})
    monkeypatch.setitem(sys.modules, "openmind", None)
    ms, om = lookup(["ms", "om"], data_dir)
    with pytest.raises(DataError) as excinfo:
        hub.dataset_rows(ms)
    assert str(excinfo.value) == ("dataset 'ms', field ms_hub_url: ms_hub_url 'AI-ModelScope/x' needs the modelscope "
                                  "package, which is not installed; pip install 'modelscope>=1.14.0', or give the "
                                  "entry an hf_hub_url, or download the data and set file_name")
    with pytest.raises(DataError, match="om_hub_url 'HaM/y' needs the openmind package"):
        hub.dataset_rows(om)


def test_use_modelscope_hub_picks_ms_hub_url_and_says_how_to_go_back(data_dir: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # issue 21: USE_MODELSCOPE_HUB=1 was silently ignored
    monkeypatch.setitem(sys.modules, "modelscope", None)
    write_info(data_dir, {"both": {"hf_hub_url": "h/x", "ms_hub_url": "m/x"}})
    assert lookup(["both"], data_dir)[0].source == "hf_hub"
    monkeypatch.setenv("USE_MODELSCOPE_HUB", "1")
    (both,) = lookup(["both"], data_dir)
    assert (both.source, both.target) == ("ms_hub", "m/x")
    with pytest.raises(DataError) as excinfo:
        hub.dataset_rows(both)
    assert excinfo.value.fix == ("pip install 'modelscope>=1.14.0', or unset USE_MODELSCOPE_HUB to read its "
                                 "hf_hub_url 'h/x', or download the data and set file_name")


def test_modelscope_gets_llamafactorys_arguments(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datasets import Dataset as HFDataset

    calls: list[dict[str, Any]] = []

    class MsDataset:
        @staticmethod
        def load(**kwargs: Any) -> Any:
            calls.append(kwargs)
            return HFDataset.from_list(ROWS)

    module = types.ModuleType("modelscope")
    module.MsDataset = MsDataset  # type: ignore[attr-defined]
    config = types.ModuleType("modelscope.utils.config_ds")
    config.MS_DATASETS_CACHE = "/ms-cache"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "modelscope", module)
    monkeypatch.setitem(sys.modules, "modelscope.utils", types.ModuleType("modelscope.utils"))
    monkeypatch.setitem(sys.modules, "modelscope.utils.config_ds", config)
    write_info(data_dir, {"ms": {"ms_hub_url": "AI-ModelScope/x", "subset": "zh", "folder": "d", "split": "dev"}})
    assert hub.dataset_rows(lookup(["ms"], data_dir)[0], ms_token="tok") == ROWS
    assert calls == [{"dataset_name": "AI-ModelScope/x", "subset_name": "zh", "data_dir": "d", "data_files": None,
                      "split": "dev", "cache_dir": "/ms-cache", "token": "tok", "use_streaming": False}]


def test_cloud_file_name_is_read_through_fsspec(data_dir: Path) -> None:
    import fsspec

    memory = fsspec.filesystem("memory")
    memory.pipe("/bucket/part/b.jsonl", (json.dumps(ROWS[0]) + "\n").encode())
    memory.pipe("/bucket/part/a.json", json.dumps([{"instruction": "first", "output": "x"}]).encode())
    memory.pipe("/bucket/part/README.md", b"# not data")
    try:
        write_info(data_dir, {"one": {"cloud_file_name": "memory://bucket/part/b.jsonl"},
                              "folder": {"cloud_file_name": "memory://bucket/part"},
                              "missing": {"cloud_file_name": "memory://bucket/nothing.json"},
                              "s3": {"cloud_file_name": "s3://bucket/x.json"}})
        one, folder, missing, s3 = lookup(["one", "folder", "missing", "s3"], data_dir)
        assert hub.dataset_rows(one) == ROWS
        assert hub.dataset_rows(folder) == [{"instruction": "first", "output": "x"}, *ROWS]
        with pytest.raises(DataError, match="memory://bucket/nothing.json does not exist"):
            hub.dataset_rows(missing)
        if importlib.util.find_spec("s3fs") is None:
            with pytest.raises(DataError, match="needs the s3fs package"):
                hub.dataset_rows(s3)
    finally:
        memory.rm("/bucket", recursive=True)
