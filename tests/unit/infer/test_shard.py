"""Prediction on several processes: shares, shard files merged in row order, resuming a killed run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tunelab.config.load import build
from tunelab.config.schema import RunConfig
from tunelab.infer import shard
from tunelab.infer.load import load_for_inference
from tunelab.infer.predict import predict
from tunelab.model.load import ModelBundle

QUESTIONS = ["Hello there", "What is the capital of France?", "Name a colour", "Count to three please",
             "Say hi", "Why is the sky blue? Explain it in a few words for a child", "Tell me a joke"]


@pytest.fixture
def setup(tmp_path: Path, tiny_model_dir: Path, make_dataset: Any) -> tuple[RunConfig, ModelBundle]:
    """A predict config on seven rows of the tiny model, and the model loaded once."""
    make_dataset([{"instruction": q, "output": "ok"} for q in QUESTIONS])
    config = build({"model_name_or_path": str(tiny_model_dir), "eval_dataset": "demo",
                    "dataset_dir": str(tmp_path / "data"), "output_dir": str(tmp_path / "one"), "max_new_tokens": 6,
                    "per_device_eval_batch_size": 2, "infer_dtype": "float32"}, purpose="predict")
    return config, load_for_inference(config)


def in_folder(config: RunConfig, folder: Path) -> RunConfig:
    """The same config writing to another output_dir."""
    return config.model_copy(update={"train": config.train.model_copy(update={"output_dir": str(folder)})})


def as_worker(monkeypatch: pytest.MonkeyPatch, rank: int, world: int) -> None:
    """Make this process look like torchrun's worker `rank` of `world`."""
    monkeypatch.setenv("RANK", str(rank))
    monkeypatch.setenv("WORLD_SIZE", str(world))


def lines(folder: Path) -> list[dict[str, str]]:
    """The predictions file's rows."""
    return [json.loads(line) for line in (folder / "generated_predictions.jsonl").read_text().splitlines()]


def test_a_single_process_writes_the_rows_in_dataset_order(setup: tuple[RunConfig, ModelBundle],
                                                           tmp_path: Path) -> None:
    config, bundle = setup
    predict(config, bundle)
    assert [row["id"] for row in lines(tmp_path / "one")] == [f"demo:{i}" for i in range(1, len(QUESTIONS) + 1)]
    assert not list((tmp_path / "one").glob(".*"))  # no hidden file left behind


def test_two_workers_shares_merge_into_the_single_process_file(setup: tuple[RunConfig, ModelBundle], tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    config, bundle = setup
    predict(config, bundle)
    two = in_folder(config, tmp_path / "two")
    written = []
    for rank in (0, 1):
        as_worker(monkeypatch, rank, 2)
        written.append(predict(two, bundle).written)
    assert written == [4, 3]  # every other batch of 2 of the length-sorted list
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    path = tmp_path / "two" / "generated_predictions.jsonl"
    partial = shard.resume_file(path)
    shard.gather_shards(path, partial)
    shard.finish_in_order(path, partial, [f"demo:{i}" for i in range(1, len(QUESTIONS) + 1)])
    assert path.read_text() == (tmp_path / "one" / "generated_predictions.jsonl").read_text()
    report, figures = shard.merged_report(tmp_path / "two", 2)
    assert (report["written"], report["rows"], report["processes"]) == (7, 7, 2)
    assert (figures.written, figures.resumed, figures.processes) == (7, 0, 2)


def test_a_killed_parallel_run_is_finished_by_a_single_process(setup: tuple[RunConfig, ModelBundle], tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    config, bundle = setup
    predict(config, bundle)
    two = in_folder(config, tmp_path / "two")
    as_worker(monkeypatch, 1, 2)
    predict(two, bundle)  # worker 1 finished; worker 0 was killed after a torn line
    (tmp_path / "two" / ".generated_predictions.jsonl.shard0.partial").write_text('{"id": "demo:6", "predi')
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    report = predict(two, bundle)
    assert (report.resumed, report.written) == (3, 4)
    assert (tmp_path / "two" / "generated_predictions.jsonl").read_text() == \
        (tmp_path / "one" / "generated_predictions.jsonl").read_text()
    assert not list((tmp_path / "two").glob(".*partial"))


def test_workers_take_whole_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    ids = [f"d:{i}" for i in range(7)]
    assert shard.share(ids, 2) == set(ids)
    as_worker(monkeypatch, 1, 2)
    assert shard.share(ids, 2) == {"d:2", "d:3", "d:6"}
    as_worker(monkeypatch, 0, 3)
    assert shard.share(ids, 2) == {"d:0", "d:1", "d:6"}


def test_gathering_twice_adds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "generated_predictions.jsonl"
    partial = shard.partial_path(path)
    partial.write_text('{"id": "d:1", "predict": "a"}\n')
    shard.shard_path(path, 0).write_text('{"id": "d:1", "predict": "a"}\n{"id": "d:3", "predict": "c"}\n')
    shard.shard_path(path, 1).write_text('{"id": "d:2", "predict": "b"}\n{"id": "d:4", "pre')
    shard.gather_shards(path, partial)
    shard.gather_shards(path, partial)
    assert [json.loads(line)["id"] for line in partial.read_text().splitlines()] == ["d:1", "d:3", "d:2"]
    shard.finish_in_order(path, partial, ["d:1", "d:2", "d:3", "d:4"])
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["d:1", "d:2", "d:3"]


def test_workers_are_started_through_torchrun_with_a_share_of_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    from tunelab.runtime import env

    command = shard.worker_command(Path("out/.predict_shards.yaml"), 2, prompts_only=True, python="py")
    assert command == ["py", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
                       "tunelab.infer.shard_worker", "out/.predict_shards.yaml", "--prompts-only"]
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(env, "cpu_cores", lambda: 8)
    monkeypatch.setattr(env, "cuda_available", lambda: False)
    assert shard.worker_environment(2)["OMP_NUM_THREADS"] == "4"
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert shard.worker_environment(2)["OMP_NUM_THREADS"] == "3"


def test_predict_refuses_several_nodes_and_model_sharding() -> None:
    from tunelab.config.errors import ConfigError

    base = {"model_name_or_path": "m", "output_dir": "o", "eval_dataset": "e"}
    with pytest.raises(ConfigError) as excinfo:
        build({**base, "nproc_per_node": 2, "nnodes": 2, "master_addr": "10.0.0.1"}, purpose="predict")
    assert [p.key for p in excinfo.value.problems] == ["nnodes"]
    with pytest.raises(ConfigError) as excinfo:
        build({**base, "nproc_per_node": 2, "fsdp": "full_shard"}, purpose="predict")
    assert [p.key for p in excinfo.value.problems] == ["fsdp"]


def test_the_workers_config_keeps_unset_keys_unset(tmp_path: Path) -> None:
    from tunelab.config.load import load_config
    from tunelab.infer.predict import prediction_settings

    config = build({"model_name_or_path": "m", "output_dir": "o", "eval_dataset": "e", "nproc_per_node": 2},
                   purpose="predict")
    file = tmp_path / "workers.yaml"
    file.write_text(shard.config_yaml(config))
    again = load_config(file, purpose="predict")
    assert again == config
    assert prediction_settings(again.infer).do_sample is False  # greedy: do_sample was not set


def test_each_worker_decodes_on_its_own_gpu_where_there_are_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    from tunelab.runtime import env

    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(env, "cuda_available", lambda: True)
    assert (shard.worker_device(use_cpu=False), shard.worker_device(use_cpu=True)) == ("cuda:1", "cpu")
    monkeypatch.setattr(env, "cuda_available", lambda: False)
    assert shard.worker_device(use_cpu=False) == "cpu"
