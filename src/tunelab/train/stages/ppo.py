"""Stage ppo: the policy (LoRA, freeze or full) under a value head, its reference, its reward source and the PPO
settings, built from already-loaded objects into a PpoTrainer (train/ppo/)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from tunelab.config.schema import RunConfig
from tunelab.data.bundle import DataBundle
from tunelab.data.collate import PromptCollator
from tunelab.infer.batch_generate import sampling_fields, stop_token_ids
from tunelab.model.adapters import base_model
from tunelab.model.load import ModelBundle
from tunelab.model.value_head import ValueHeadModel
from tunelab.train.outdir import RunError
from tunelab.train.ppo.reference import build_reference
from tunelab.train.ppo.scorers import AdapterScorer, ApiScorer, ModelScorer, Scorer
from tunelab.train.ppo.trainer import PpoSettings, PpoTrainer
from tunelab.train.trainer import TrainerOptions

if TYPE_CHECKING:
    from transformers import TrainerCallback, TrainingArguments

VALUE_HEAD_DROPOUT = 0.1  # TRL's summary_dropout_prob default, which LLaMA-Factory keeps


def build_scorer(config: RunConfig, policy: ValueHeadModel, model_bundle: ModelBundle) -> Scorer:
    """The reward source of reward_model_type."""
    pref = config.pref
    if pref.reward_model_type == "lora":
        return AdapterScorer(policy, Path(pref.reward_model))
    if pref.reward_model_type == "api":
        from tunelab.remote.endpoint import EndpointSettings
        from tunelab.remote.score import ScoreClient

        settings = EndpointSettings(base_url=pref.reward_model, model="model", api_key_env=pref.reward_api_key_env,
                                    where="reward_model")
        return ApiScorer(ScoreClient(settings), model_bundle.tokenizer)
    from tunelab.infer.score import load_reward_scorer

    dtype = str(base_model(model_bundle.model).dtype).removeprefix("torch.")
    scorer = load_reward_scorer(pref.reward_model, pref.reward_model_adapters, config.data.template,
                                config.model.trust_remote_code, dtype)
    if len(scorer.tokenizer) != len(model_bundle.tokenizer):
        raise RunError(f"reward_model {pref.reward_model}: its vocabulary ({len(scorer.tokenizer)} tokens) is not "
                       f"the policy's ({len(model_bundle.tokenizer)}); PPO scores the policy's tokens directly, so "
                       "the reward model must share the policy's tokenizer")
    scorer.model.to(base_model(model_bundle.model).device)
    return ModelScorer(scorer)


def ppo_settings(config: RunConfig, model_bundle: ModelBundle) -> PpoSettings:
    """LLaMA-Factory's batch layout and the generation settings of the infer keys."""
    tokenizer, train, pref = model_bundle.tokenizer, config.train, config.pref
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return PpoSettings(mini_batch=train.per_device_train_batch_size, accumulation=train.gradient_accumulation_steps,
                       buffer_size=pref.ppo_buffer_size, ppo_epochs=pref.ppo_epochs, target=pref.ppo_target,
                       score_norm=pref.ppo_score_norm, whiten_rewards=pref.ppo_whiten_rewards,
                       max_new_tokens=config.infer.max_new_tokens, sampling=sampling_fields(config.infer),
                       stop_ids=stop_token_ids(tokenizer, model_bundle.model), pad_id=pad_id,
                       max_grad_norm=train.max_grad_norm)


def build_trainer(model_bundle: ModelBundle, data_bundle: DataBundle, args: TrainingArguments,
                  callbacks: list[TrainerCallback], options: TrainerOptions | None = None) -> PpoTrainer:
    """A PpoTrainer over the loaded policy; the reward model and reference are loaded by model/ and infer/. One
    process, no evaluation and the reward model's kind and folder are checked with the config
    (config/pref_checks.py)."""
    if options is None or options.run_config is None:
        raise RunError("stage ppo needs the run's config (TrainerOptions.run_config)")
    config = options.run_config
    settings = ppo_settings(config, model_bundle)
    model = model_bundle.model
    if args.gradient_checkpointing:  # the Trainer would call it on the value-head wrapper, which has none
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    policy = ValueHeadModel(model, dropout=VALUE_HEAD_DROPOUT).to(base_model(model).device)
    reference = build_reference(model, config.method.finetuning_type, config.pref.ref_model,
                                config.pref.ref_model_adapters, config.model.trust_remote_code, config.model.cache_dir)
    scorer = build_scorer(config, policy, model_bundle)
    # the Trainer sees one batch of a whole experience buffer per step and never accumulates: PPO steps inside
    ppo_args = replace(args, per_device_train_batch_size=settings.rollout_size, gradient_accumulation_steps=1,
                       gradient_checkpointing=False)
    return PpoTrainer(policy=policy, reference=reference, scorer=scorer, settings=settings, args=ppo_args,
                      train_dataset=data_bundle.train, data_collator=PromptCollator(settings.pad_id),
                      processing_class=model_bundle.tokenizer, callbacks=callbacks,
                      options=replace(options, master_weights=False))
