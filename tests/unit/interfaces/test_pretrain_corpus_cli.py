"""A pre-training corpus shorter than cutoff_len, as a user runs it: `tunelab data stats`, `data tokenize` and
`tunelab train` each say what packing does with it, and training stops with the cause and the fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tunelab.interfaces.cli import main

SHORT = [{"text": "A short document about cats."}]
LONGER = [{"text": f"Document {i}: tunelab trains small models on plain text, line after line."} for i in range(6)]


@pytest.fixture()
def corpus_config(tmp_path: Path, tiny_model_dir: Path, data_dir: Path) -> Path:
    path = tmp_path / "pt.yaml"
    path.write_text(f"model_name_or_path: {tiny_model_dir}\nstage: pt\ndataset: corpus\ndataset_dir: {data_dir}\n"
                    f"cutoff_len: 64\noutput_dir: {tmp_path / 'out'}\nmax_steps: 1\nreport_to: none\n",
                    encoding="utf-8")
    return path


def corpus(make_dataset: Any, rows: list[dict[str, str]]) -> None:
    make_dataset(rows, name="corpus", file_name="corpus.json", entry={"columns": {"prompt": "text"}})


def test_train_on_a_too_short_corpus_names_the_cause_and_the_fix(corpus_config: Path, make_dataset: Any,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    corpus(make_dataset, SHORT)
    assert main(["train", str(corpus_config)]) == 1
    err = capsys.readouterr().err
    assert "num_samples" not in err and "Traceback" not in err
    assert "dataset 'corpus', field cutoff_len: the train set has no examples: its 1 text makes" in err
    assert "fewer than one block of 64 tokens (cutoff_len 64)" in err
    assert "or lower, set packing: false" in err
    tokens = int(err.split("text makes ")[1].split(" tokens")[0])
    assert f"set cutoff_len: {tokens} or lower" in err
    fixed = [f"cutoff_len={tokens}", "overwrite_output_dir=true"]
    assert main(["train", str(corpus_config), *fixed]) == 0  # the fix it names works


def test_packing_false_keeps_a_short_text(corpus_config: Path, make_dataset: Any, tmp_path: Path) -> None:
    corpus(make_dataset, SHORT)
    out = tmp_path / "tok.jsonl"
    assert main(["data", "tokenize", str(corpus_config), "packing=false", "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 1


def test_tokenize_refuses_a_corpus_without_examples(corpus_config: Path, make_dataset: Any, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    corpus(make_dataset, SHORT)
    out = str(tmp_path / "tok.jsonl")
    assert main(["data", "tokenize", str(corpus_config), "--out", out]) == 2  # the data tools exit 2 on bad data
    assert "the train set has no examples" in capsys.readouterr().err


def test_tokenize_says_how_many_tokens_packing_dropped(corpus_config: Path, make_dataset: Any, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    corpus(make_dataset, LONGER)
    out = tmp_path / "tok.jsonl"
    assert main(["data", "tokenize", str(corpus_config), "cutoff_len=32", "--out", str(out)]) == 0
    stdout = capsys.readouterr().out
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and all(len(row["input_ids"]) == 32 for row in rows)
    dropped = int(stdout.split("tokens dropped ")[1].split()[0].replace(",", ""))
    assert 0 < dropped < 32
    assert f"corpus: packing dropped {dropped} of {len(rows) * 32 + dropped} tokens (6 texts)" in stdout


def test_stats_on_a_corpus_shows_blocks_and_dropped_tokens(corpus_config: Path, make_dataset: Any, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    corpus(make_dataset, SHORT)
    png = tmp_path / "len.png"
    assert main(["data", "stats", str(corpus_config), "--png", str(png)]) == 0
    out = capsys.readouterr().out
    assert "text: min" in out and "into blocks of 64: 0 examples" in out
    assert "no examples: training would stop; set cutoff_len:" in out and png.stat().st_size > 0
    assert main(["data", "stats", str(corpus_config), "packing=false", "--png", ""]) == 0
    assert "0 of 1 texts are longer than cutoff_len 64" in capsys.readouterr().out
