"""Master weights: bf16 working weights, float32 masters updated by the optimizer, saved and resumed exactly."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from tunelab.config.load import build
from tunelab.runtime import env
from tunelab.train import speed
from tunelab.train.master import MasterWeights
from tunelab.train.plots import read_log
from tunelab.train.run import train

QA = [{"instruction": f"Question {i}?", "output": f"Answer number {i}."} for i in range(12)]


def loss_of(model: Any, ids: torch.Tensor) -> torch.Tensor:
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return model(input_ids=ids, labels=ids).loss


def kept(master: MasterWeights) -> list[torch.Tensor]:
    return list(master.gradients())


def test_weights_become_bf16_and_gradients_sum_into_float32_masters(make_tiny_llama: Any) -> None:
    model = make_tiny_llama()
    before = [p.detach().clone() for p in model.parameters()]
    master = MasterWeights(model)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert all(m.dtype == torch.float32 and torch.equal(m, b) for m, b in zip(master.masters, before))
    ids = torch.randint(0, model.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(0))
    loss_of(model, ids[:1]).backward()
    assert all(p.grad is None for p in model.parameters())  # taken off the weights
    first = kept(master)
    assert len(first) == len(master.masters) and all(g.dtype == torch.bfloat16 and g.abs().sum() > 0 for g in first)
    loss_of(model, ids[1:]).backward()  # a second micro-batch adds to the first, in float32
    assert all(g.dtype == torch.float32 for g in kept(master))
    alone = []
    for row in (ids[:1], ids[1:]):
        other = make_tiny_llama()
        other_master = MasterWeights(other)
        loss_of(other, row).backward()
        alone.append(kept(other_master))
    for summed, one, two in zip(kept(master), *alone):
        assert torch.equal(summed, one.float() + two.float())


def test_the_optimizer_steps_the_masters_and_refreshes_the_weights(make_tiny_llama: Any) -> None:
    model = make_tiny_llama()
    master = MasterWeights(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    master.attach(optimizer)
    assert isinstance(optimizer, torch.optim.AdamW)
    start = [m.clone() for m in master.masters]
    ids = torch.arange(12).unsqueeze(0)
    loss_of(model, ids).backward()
    optimizer.step()
    assert all(not torch.equal(m, s) for m, s in zip(master.masters, start))
    assert all(m.grad is None for m in master.masters) and kept(master) == []  # consumed by the step
    for param, m in zip(master.params, master.masters):
        assert param.dtype == torch.bfloat16 and torch.equal(param.data, m.to(torch.bfloat16))
    assert all(len(optimizer.state[m]) > 0 for m in master.masters)  # the optimizer's state is the masters'
    assert [p for g in optimizer.param_groups for p in g["params"]] == master.masters  # whole groups again


def test_chunked_steps_on_kept_gradients_equal_float32_gradients_clipped_in_place(
        make_tiny_llama: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from tunelab.train import master as master_module

    monkeypatch.setattr(master_module, "CHUNK_ELEMENTS", 3000)  # several chunks, some weights alone
    ours, theirs = make_tiny_llama(), make_tiny_llama()
    master = MasterWeights(ours)
    optimizer = torch.optim.AdamW(ours.parameters(), lr=1e-2, weight_decay=0.1, fused=True)
    master.attach(optimizer)
    assert len(list(master_module.chunks(master.masters))) > 3
    masters = [p.detach().clone() for p in theirs.parameters()]
    with torch.no_grad():
        for p in theirs.parameters():
            p.data = p.data.to(torch.bfloat16)
    reference = torch.optim.AdamW(masters, lr=1e-2, weight_decay=0.1, fused=True)
    ids = torch.randint(0, ours.config.vocab_size, (3, 12), generator=torch.Generator().manual_seed(1))
    # per step: the micro-batches, then the clip norms (1e-3 clips, inf only measures; two clips in one step)
    plan = [([ids[:1]], [1e-3]), ([ids[1:2], ids[2:]], [math.inf]), ([ids[2:]], [0.5, 1e-3]), ([ids[:2]], [])]
    for rows, max_norms in plan:
        for row in rows:
            loss_of(ours, row).backward()
        got = [master.clip_grad_norm(max_norm) for max_norm in max_norms]
        optimizer.step()
        grads = [None] * len(masters)
        for row in rows:
            loss_of(theirs, row).backward()
            grads = [p.grad.float() if g is None else g + p.grad.float() for g, p in zip(grads, theirs.parameters())]
            theirs.zero_grad(set_to_none=True)
        want = []
        for m, g in zip(masters, grads):
            m.grad = g
        for max_norm in max_norms:
            want.append(torch.nn.utils.clip_grad_norm_(masters, max_norm))
        reference.step()
        reference.zero_grad(set_to_none=True)
        with torch.no_grad():
            for p, m in zip(theirs.parameters(), masters):
                p.data.copy_(m)
        assert [float(n) for n in got] == [float(n) for n in want]
        for a, b in zip(master.masters, masters):
            assert torch.equal(a, b)
    assert optimizer.state_dict()["state"].keys() == reference.state_dict()["state"].keys()


def test_saving_and_loading_go_through_the_masters(make_tiny_llama: Any) -> None:
    model = make_tiny_llama()
    master = MasterWeights(model)
    with torch.no_grad():
        for m in master.masters:
            m.add_(1e-4)  # a change bf16 cannot hold
    master.refresh()
    master_of = dict(zip((name for name, _ in model.named_parameters()), master.masters))
    with master.masters_in_place():
        saved = {k: v.clone() for k, v in model.state_dict().items()}
    assert all(v.dtype == torch.float32 for v in saved.values())
    assert torch.equal(saved["model.norm.weight"], master_of["model.norm.weight"])
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}  # the working weights are back
    with master.masters_in_place():
        model.load_state_dict({k: v + 1 for k, v in saved.items()})
    assert all(torch.equal(m, saved[name] + 1) for name, m in master_of.items())
    assert all(torch.equal(p.data, m.to(torch.bfloat16)) for p, m in zip(master.params, master.masters))


def run(tmp_path: Path, tiny_model_dir: Path, data_dir: Path, out: str, **flat: Any) -> tuple[dict[str, Any], Path]:
    config = build({"model_name_or_path": str(tiny_model_dir), "dataset_dir": str(data_dir),
                    "output_dir": str(tmp_path / out), "dataset": "qa", "finetuning_type": "full", "bf16": True,
                    "max_steps": 4, "per_device_train_batch_size": 2, "learning_rate": 1e-3, "logging_steps": 1,
                    "disable_shuffling": True, "report_to": "none", "save_steps": 2, **flat})
    return train(config), tmp_path / out


def losses(out: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_log(out / "run.jsonl") if "loss" in r}


def weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "model.safetensors"))


@pytest.fixture
def bf16_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(env, "cpu_has_fast_bf16", lambda: True)  # bf16 on any CPU (slow without the units)


def test_full_fine_tuning_on_the_cpu_resumes_to_the_same_float32_weights(
        tmp_path: Path, tiny_model_dir: Path, make_dataset: Any, data_dir: Path, bf16_cpu: None,
        capsys: pytest.CaptureFixture[str]) -> None:
    make_dataset(QA, name="qa", file_name="qa.json")
    _, whole = run(tmp_path, tiny_model_dir, data_dir, "whole")
    assert "float32 masters in the optimizer" in capsys.readouterr().err
    final = weights(whole)
    assert {v.dtype for v in final.values()} == {torch.float32}
    assert any((v.float() != v.to(torch.bfloat16).float()).any() for v in final.values())  # not bf16-rounded
    _, resumed = run(tmp_path, tiny_model_dir, data_dir, "resumed",
                     resume_from_checkpoint=str(whole / "checkpoint-2"))
    again = weights(resumed)
    assert all(torch.equal(final[k], again[k]) for k in final)
    assert losses(resumed) == {k: v for k, v in losses(whole).items() if k > 2}


def test_master_weights_train_like_autocast(tmp_path: Path, tiny_model_dir: Path, make_dataset: Any,
                                            data_dir: Path, bf16_cpu: None, monkeypatch: pytest.MonkeyPatch) -> None:
    make_dataset(QA, name="qa", file_name="qa.json")
    run(tmp_path, tiny_model_dir, data_dir, "master", save_strategy="no", gradient_accumulation_steps=2)
    monkeypatch.setattr(speed, "master_weights", lambda config, precision: False)
    run(tmp_path, tiny_model_dir, data_dir, "autocast", save_strategy="no", gradient_accumulation_steps=2)
    master, autocast = losses(tmp_path / "master"), losses(tmp_path / "autocast")
    assert master.keys() == autocast.keys() == {1, 2, 3, 4}
    assert all(abs(master[k] - autocast[k]) < 0.02 * autocast[k] for k in master)  # bf16 noise, not a bug
    assert losses(tmp_path / "master")[4] < losses(tmp_path / "master")[1]


def test_master_weights_only_where_measured(monkeypatch: pytest.MonkeyPatch) -> None:
    from tunelab.model.precision import Precision

    cpu_bf16 = Precision(True, False, True, "bfloat16", "")
    def wanted(precision: Precision, **flat: Any) -> bool:
        return speed.master_weights(build({"model_name_or_path": "m", "dataset": "d", "output_dir": "o",
                                           "finetuning_type": "full", **flat}), precision)

    assert wanted(cpu_bf16) and wanted(cpu_bf16, finetuning_type="freeze")
    assert not wanted(cpu_bf16, finetuning_type="lora")
    assert not wanted(Precision(True, False, False, "bfloat16", ""))  # GPU: autocast
    assert not wanted(Precision(False, False, True, "float32", ""))  # float32 training
    assert not wanted(Precision(False, False, True, "bfloat16", "", trainable="bfloat16"))  # pure_bf16
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert not wanted(cpu_bf16)  # DistributedDataParallel reduces the gradients itself


def test_the_best_checkpoint_is_the_saved_model(tmp_path: Path, tiny_model_dir: Path, make_dataset: Any,
                                                data_dir: Path, bf16_cpu: None) -> None:
    make_dataset(QA, name="qa", file_name="qa.json")
    _, out = run(tmp_path, tiny_model_dir, data_dir, "best", val_size=4, eval_strategy="steps", eval_steps=1,
                 save_steps=1, load_best_model_at_end=True, metric_for_best_model="eval_loss",
                 greater_is_better=True)  # the "best" is the highest loss: not the last step
    summary = json.loads((out / "run_summary.json").read_text())
    best = Path(summary["best"]["checkpoint"]).name
    assert best != "checkpoint-4"
    final, kept = weights(out), weights(out / best)
    assert all(torch.equal(final[k], kept[k]) for k in final)
