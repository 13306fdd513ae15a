"""Training stages: each module exposes build_trainer(model_bundle, data_bundle, args, callbacks)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from tunelab.train.stages import dpo, grpo, kto, ppo, rm, sft

if TYPE_CHECKING:
    from transformers import TrainerCallback, TrainingArguments

    from tunelab.data.bundle import DataBundle
    from tunelab.model.load import ModelBundle
    from tunelab.train.trainer import TrainerOptions, TunelabTrainer


class StageBuilder(Protocol):
    """A stage's build_trainer: the loaded bundles, the arguments and callbacks in, a trainer out."""

    def __call__(self, model_bundle: ModelBundle, data_bundle: DataBundle, args: TrainingArguments,
                 callbacks: list[TrainerCallback], options: TrainerOptions | None = None) -> TunelabTrainer:
        """A trainer over the already-loaded objects."""
        ...


BUILDERS: dict[str, StageBuilder] = {"pt": sft.build_trainer, "sft": sft.build_trainer, "rm": rm.build_trainer,
                                      "dpo": dpo.build_trainer, "kto": kto.build_trainer, "ppo": ppo.build_trainer,
                                      "grpo": grpo.build_trainer}
