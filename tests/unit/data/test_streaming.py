"""streaming: the same examples as the in-memory path, shuffled by a seeded buffer, with a held-out eval set."""

from __future__ import annotations

from itertools import islice
from pathlib import Path
from typing import Any

import pytest

from tunelab.config.schema import DataSection
from tunelab.data.errors import DataError
from tunelab.data.pipeline import build_data
from tunelab.data.streaming import interleave, shuffled


def rows(prefix: str, count: int) -> list[dict[str, str]]:
    return [{"instruction": f"{prefix} question {i}?", "output": f"{prefix} answer {i}."} for i in range(count)]


def section(data_dir: Path, **values: Any) -> DataSection:
    return DataSection(dataset_dir=str(data_dir), streaming=True, **{"dataset": "a", **values})


def ids(examples: Any) -> list[list[int]]:
    return [list(example["input_ids"]) for example in examples]


def test_unshuffled_stream_equals_the_in_memory_examples(make_dataset: Any, data_dir: Path,
                                                         tiny_tokenizer: Any) -> None:
    make_dataset(rows("a", 7), name="a", file_name="a.json")
    make_dataset(rows("b", 5), name="b", file_name="b.jsonl", raw="\n".join(
        __import__("json").dumps(r) for r in rows("b", 5)))
    values = {"dataset": "a,b", "preprocessing_batch_size": 3}
    stream = build_data(section(data_dir, disable_shuffling=True, **values), tiny_tokenizer, seed=0)
    memory = build_data(DataSection(dataset_dir=str(data_dir), **values), tiny_tokenizer, seed=0)
    assert stream.streaming and not memory.streaming
    assert ids(stream.train) == ids(memory.train)
    assert stream.report.dataset("a").rows_read == 7 and stream.report.dataset("b").tokens > 0


def test_the_shuffle_buffer_is_seeded_and_changes_with_the_epoch(make_dataset: Any, data_dir: Path,
                                                                 tiny_tokenizer: Any) -> None:
    make_dataset(rows("a", 20), name="a", file_name="a.json")
    bundle = build_data(section(data_dir, buffer_size=8), tiny_tokenizer, seed=5)
    first, again = ids(bundle.train), ids(bundle.train)
    bundle.train.set_epoch(1)
    later = ids(bundle.train)
    assert first == again and first != later and sorted(first) == sorted(later)
    plain = ids(build_data(section(data_dir, disable_shuffling=True), tiny_tokenizer, seed=5).train)
    assert sorted(first) == sorted(plain) and first != plain


def test_val_size_rows_are_held_out_in_every_epoch(make_dataset: Any, data_dir: Path, tiny_tokenizer: Any) -> None:
    make_dataset(rows("a", 12), name="a", file_name="a.json")
    bundle = build_data(section(data_dir, val_size=3, buffer_size=4), tiny_tokenizer, seed=1)
    held = ids(bundle.eval)
    assert len(held) == 3 and bundle.report.eval_examples == 3
    for epoch in (0, 1, 2):
        bundle.train.set_epoch(epoch)
        train = ids(bundle.train)
        assert len(train) == 9 and not any(example in train for example in held)


def test_packing_and_max_samples_while_streaming(make_dataset: Any, data_dir: Path, tiny_tokenizer: Any) -> None:
    make_dataset(rows("a", 10), name="a", file_name="a.json")
    bundle = build_data(section(data_dir, neat_packing=True, cutoff_len=64, max_samples=6), tiny_tokenizer, seed=0)
    packed = list(bundle.train)
    assert bundle.packing == "neat" and sum(len(row["example_lengths"]) for row in packed) == 6
    assert all(len(row["input_ids"]) == 64 for row in packed)


def test_a_bad_row_stops_before_training(make_dataset: Any, data_dir: Path, tiny_tokenizer: Any) -> None:
    path = make_dataset(rows("a", 2) + [{"instruction": "x", "output": ""}], name="a", file_name="a.json")
    with pytest.raises(DataError) as excinfo:
        build_data(section(data_dir), tiny_tokenizer, seed=0)
    assert str(excinfo.value).startswith(f"dataset 'a' ({path}), row 3, field output: the response is empty")
    bundle = build_data(section(data_dir, on_bad_row="skip"), tiny_tokenizer, seed=0)
    assert len(ids(bundle.train)) == 2
    assert bundle.report.dataset("a").skipped == {"output: the response is empty": 1}


def test_num_samples_cannot_stream(make_dataset: Any, data_dir: Path, tiny_tokenizer: Any) -> None:
    make_dataset(rows("a", 3), name="a", file_name="a.json", entry={"num_samples": 5})
    with pytest.raises(DataError, match="num_samples draws from the whole dataset"):
        build_data(section(data_dir), tiny_tokenizer, seed=0)


def test_a_fractional_val_size_cannot_stream(make_dataset: Any, data_dir: Path, tiny_tokenizer: Any) -> None:
    make_dataset(rows("a", 3), name="a", file_name="a.json")
    with pytest.raises(DataError, match="a stream has no known length"):
        build_data(section(data_dir, val_size=0.5), tiny_tokenizer, seed=0)


def test_interleave_strategies() -> None:
    def sources() -> list[Any]:
        return [iter(["a1", "a2", "a3"]), iter(["b1"])]

    restart = [lambda: iter(["a1", "a2", "a3"]), lambda: iter(["b1"])]
    assert list(interleave(sources(), restart, "interleave_under", None, 0)) == ["a1", "b1", "a2"]
    assert list(interleave(sources(), restart, "interleave_over", None, 0)) == ["a1", "b1", "a2", "b1", "a3", "b1"]
    once = list(interleave(sources(), restart, "interleave_once", [0.5, 0.5], 0))
    assert sorted(once) == ["a1", "a2", "a3", "b1"]


def test_shuffled_keeps_every_item() -> None:
    items = list(range(50))
    out = list(shuffled(iter(items), 7, seed=3))
    assert sorted(out) == items and out != items and out == list(shuffled(iter(items), 7, seed=3))
    assert list(islice(shuffled(iter(items), 100, seed=3), 50)) != items


def test_a_row_with_media_stops_a_stream_unless_dropped(make_dataset: Any, data_dir: Path,
                                                        tiny_tokenizer: Any) -> None:
    pics = rows("a", 2) + [{"instruction": "<image>What is it?", "output": "A cat.", "images": ["cat.png"]}]
    path = make_dataset(pics, name="a", file_name="a.json", entry={"columns": {
        "prompt": "instruction", "response": "output", "images": "images"}})
    (data_dir / "cat.png").write_bytes(b"x")
    with pytest.raises(DataError) as excinfo:
        build_data(section(data_dir), tiny_tokenizer, seed=0)
    assert str(excinfo.value).startswith(f"dataset 'a' ({path}), row 3, field drop_media: the row carries media "
                                         "(1 image), but tunelab trains on text only")
    bundle = build_data(section(data_dir, drop_media=True), tiny_tokenizer, seed=0)
    assert len(ids(bundle.train)) == 3 and bundle.report.dataset("a").media_dropped == 1
