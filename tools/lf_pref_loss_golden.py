"""Record LLaMA-Factory 0.9.5's preference losses on fixed log-probabilities: tests/fixtures/pref_loss_golden.json.

Run with the Python of a venv where LLaMA-Factory 0.9.5 (and its TRL 0.24) is installed:

    /path/to/lf-venv/bin/python tools/lf_pref_loss_golden.py

LLaMA-Factory's own CustomDPOTrainer.compute_preference_loss (over TRL's dpo_loss, with its odds-ratio, SimPO and
BCO losses) and CustomKTOTrainer.kto_loss run on random per-pair log-probabilities, on trainer objects built
without their __init__ (no model is needed for the loss). tests/unit/train/test_pref_loss.py checks tunelab's
train/pref_loss.py against every case. kto_pair is not recorded: TRL 0.24 no longer has it.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import torch
from llamafactory.train.dpo.trainer import CustomDPOTrainer
from llamafactory.train.kto.trainer import CustomKTOTrainer
from trl.trainer.utils import RunningMoments

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "pref_loss_golden.json"
DPO_CASES = [("sigmoid", {}), ("sigmoid", {"dpo_label_smoothing": 0.2}), ("hinge", {}), ("ipo", {}),
             ("orpo", {}), ("simpo", {"simpo_gamma": 0.7}), ("sigmoid", {"pref_bco_weight": 0.4}),
             ("hinge", {"pref_bco_weight": 1.0})]
MEAN_LOSSES = ("ipo", "orpo", "simpo")  # given means per token: the values are scaled into (-2, 0)


def dpo_trainer(loss: str, extra: dict[str, float], accelerator: SimpleNamespace) -> CustomDPOTrainer:
    """A CustomDPOTrainer holding only what compute_preference_loss reads."""
    trainer = CustomDPOTrainer.__new__(CustomDPOTrainer)
    trainer.__dict__.update(
        finetuning_args=SimpleNamespace(use_ref_model=loss not in ("orpo", "simpo")), beta=0.3, loss_type=loss,
        label_smoothing=extra.get("dpo_label_smoothing", 0.0), simpo_gamma=extra.get("simpo_gamma", 0.5),
        bco_gemma=extra.get("pref_bco_weight", 0.0), f_divergence_type="reverse_kl", reference_free=False,
        use_weighting=False, accelerator=accelerator)
    if trainer.bco_gemma > 0:
        trainer.running = RunningMoments(accelerator)
    return trainer


def main() -> None:
    """Write the fixture."""
    torch.manual_seed(0)
    accelerator = SimpleNamespace(device=torch.device("cpu"), use_distributed=False, gather_for_metrics=lambda x: x)
    logps = {name: (-torch.rand(3, dtype=torch.float64) * 20) for name in ("pc", "pr", "rc", "rr")}
    cases = []
    for loss, extra in DPO_CASES:
        scale = 0.1 if loss in MEAN_LOSSES else 1.0
        trainer = dpo_trainer(loss, extra, accelerator)
        batches = []
        for _ in range(2):  # two batches: BCO's running mean moves between them
            losses, chosen, rejected = trainer.compute_preference_loss(*(logps[k] * scale for k in logps))
            batches.append({"losses": losses.tolist(), "chosen_rewards": chosen.tolist(),
                            "rejected_rewards": rejected.tolist()})
        cases.append({"pref_loss": loss, "keys": {"pref_beta": 0.3, **extra}, "scale": scale, "batches": batches})
    kto = CustomKTOTrainer.__new__(CustomKTOTrainer)
    kto.__dict__.update(beta=0.3, desirable_weight=1.5, undesirable_weight=0.7, calculate_KL=True, loss_type="kto",
                        accelerator=accelerator)
    kl_policy, kl_reference = -torch.rand(4, dtype=torch.float64) * 20, -torch.rand(4, dtype=torch.float64) * 20
    losses, chosen, rejected, kl = kto.kto_loss(logps["pc"][:2], logps["pr"][:2], kl_policy, logps["rc"][:2],
                                                logps["rr"][:2], kl_reference)
    OUT.write_text(json.dumps({
        "source": "LLaMA-Factory 0.9.5 CustomDPOTrainer.compute_preference_loss, CustomKTOTrainer.kto_loss; TRL 0.24",
        "logps": {k: v.tolist() for k, v in logps.items()}, "dpo": cases,
        "kto": {"keys": {"pref_beta": 0.3, "kto_chosen_weight": 1.5, "kto_rejected_weight": 0.7},
                "kl_policy": kl_policy.tolist(), "kl_reference": kl_reference.tolist(),
                "loss": losses.nanmean().item(), "kl": kl.item(), "chosen_rewards": chosen.tolist(),
                "rejected_rewards": rejected.tolist()}}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
