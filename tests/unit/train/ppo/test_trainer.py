"""One PPO step on the tiny Llama with a scripted scorer: the policy moves toward the rewarded answer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from tunelab.train.ppo import trainer as ppo_trainer
from tunelab.train.ppo.reference import Reference
from tunelab.train.ppo.rollout import Rollout, build_rollout, response_logps
from tunelab.train.ppo.trainer import PpoSettings, PpoTrainer

GOOD, BAD = 40, 41  # two answer tokens; the scorer rewards GOOD
PROMPT = [5, 6, 7, 8]


class Scripted:
    """+1 for rows whose answer is GOOD, -1 otherwise."""

    def score(self, rollout: Rollout) -> torch.Tensor:
        last = rollout.targets.gather(1, (rollout.mask.sum(1, keepdim=True) - 1).long())[:, 0]
        return torch.where(last == GOOD, 1.0, -1.0)


def make_trainer(tmp_path: Path, tiny_llama: Any, tiny_tokenizer: Any, epochs: int = 4) -> PpoTrainer:
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import TrainingArguments

    from tunelab.data.collate import PromptCollator
    from tunelab.model.value_head import ValueHeadModel

    torch.manual_seed(0)
    model = get_peft_model(tiny_llama, LoraConfig(r=4, target_modules=["q_proj", "v_proj", "o_proj"],
                                                  task_type="CAUSAL_LM"))
    policy = ValueHeadModel(model, dropout=0.0)
    settings = PpoSettings(mini_batch=2, accumulation=2, buffer_size=1, ppo_epochs=epochs, target=6.0,
                           score_norm=False, whiten_rewards=False, max_new_tokens=1,
                           sampling={"do_sample": False, "repetition_penalty": 1.0}, stop_ids=frozenset(), pad_id=0,
                           max_grad_norm=1.0)
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=4, learning_rate=2e-2,
                             use_cpu=True, report_to="none", max_steps=1, save_strategy="no", logging_steps=1,
                             disable_tqdm=True)
    data = Dataset.from_list([{"input_ids": PROMPT, "labels": [-100]}] * 4)
    trainer = PpoTrainer(policy=policy, reference=Reference(None), scorer=Scripted(), settings=settings, args=args,
                         train_dataset=data, data_collator=PromptCollator(0), processing_class=tiny_tokenizer,
                         callbacks=[])
    trainer.create_optimizer_and_scheduler(num_training_steps=1)
    return trainer


def preference(trainer: PpoTrainer) -> float:
    """log p(GOOD | prompt) - log p(BAD | prompt) under the policy."""
    rollout = build_rollout([PROMPT, PROMPT], [[GOOD], [BAD]], 0, torch.device("cpu"))
    with torch.no_grad():
        logps = response_logps(trainer.policy.pretrained_model, rollout)
    return float(logps[0, 0] - logps[1, 0])


def test_one_ppo_step_moves_the_policy_toward_the_rewarded_answer(tmp_path: Path, tiny_llama: Any,
                                                                 tiny_tokenizer: Any,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = make_trainer(tmp_path, tiny_llama, tiny_tokenizer)
    answers = [[GOOD], [BAD], [GOOD], [BAD]]
    monkeypatch.setattr(ppo_trainer, "generate_responses", lambda *args: answers)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    before = preference(trainer)
    base = [p.detach().clone() for p in trainer.policy.pretrained_model.get_base_model().parameters()
            if not p.requires_grad]
    loss = trainer.training_step(trainer.model, batch)
    assert preference(trainer) > before + 0.05
    assert torch.isfinite(loss)
    # 4 epochs x (4 rows / backward batches of 2 x 2) = 4 optimizer steps; the base weights never move
    assert len(trainer.grad_norms) == 4
    frozen = [p for p in trainer.policy.pretrained_model.get_base_model().parameters() if not p.requires_grad]
    assert all(torch.equal(a, b) for a, b in zip(base, frozen))
    figures = trainer.figures
    assert figures["reward"] == [0.0] and figures["kl"] == [0.0]  # the reference equals the policy at the start
    assert figures["loss/value"][0] > 0


def test_the_kl_coefficient_follows_the_measured_kl(tmp_path: Path, tiny_llama: Any, tiny_tokenizer: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    trainer = make_trainer(tmp_path, tiny_llama, tiny_tokenizer, epochs=1)
    monkeypatch.setattr(ppo_trainer, "generate_responses", lambda *args: [[GOOD], [BAD], [GOOD], [BAD]])
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(4)])
    trainer.training_step(trainer.model, batch)
    # KL 0 at the first step (policy = reference): error -1 clipped to -0.2, 4 samples of a 10000 horizon
    assert trainer.ppo_state().kl_coef == pytest.approx(0.2 * (1 - 0.2 * 4 / 10000))
