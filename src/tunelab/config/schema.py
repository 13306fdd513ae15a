"""The typed run config: closed sections, each field documented once, one flat namespace outside."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, NonNegativeFloat, NonNegativeInt, PositiveFloat,
                      PositiveInt, TypeAdapter, ValidationError, model_validator)

from tunelab.config.eval_tasks import EvalModelSpec, EvalTaskSpec, parse_entries, parse_tasks
from tunelab.config.rewards import RewardSpec, parse_rewards


def yaml_no(value: object) -> object:
    """YAML 1.1 reads an unquoted `no` as false; for strategy keys it means the string 'no'."""
    return "no" if value is False else value


Strategy = Annotated[Literal["no", "steps", "epoch"], BeforeValidator(yaml_no)]


def json_object(value: object) -> object:
    """vllm_config as LLaMA-Factory takes it: a mapping, or a JSON object written as a string."""
    import json

    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a JSON object ({exc.msg} at character {exc.pos}); write e.g. "
                             "'{\"max_num_seqs\": 64}'") from None
    return value


EngineOptions = Annotated[dict[str, str | int | float | bool | None] | None, BeforeValidator(json_object)]

# The tool-call formats the data layer writes (tool_format); config cannot import data, so the names are kept
# here and a test checks they equal the writers' table.
TOOL_FORMAT_NAMES: tuple[str, ...] = ("default", "glm4", "llama3", "mistral", "qwen")

# GGUF types the export writes (gguf_type): the gguf package quantizes the first ones in Python; the K-quants go
# through llama.cpp's llama-quantize. Kept here (config cannot import export); the writer checks it knows each.
GGUF_PYTHON_TYPES: tuple[str, ...] = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1")
GGUF_LLAMA_QUANTIZE_TYPES: tuple[str, ...] = ("q2_k", "q3_k_s", "q3_k_m", "q3_k_l", "q4_k_s", "q4_k_m", "q5_k_s",
                                              "q5_k_m", "q6_k")
GGUF_TYPES: tuple[str, ...] = GGUF_PYTHON_TYPES + GGUF_LLAMA_QUANTIZE_TYPES


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, values never change after validation."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=(), coerce_numbers_to_str=True)


class ModelSection(Section):
    model_name_or_path: str = Field(
        description="A local Hugging Face folder, a local .gguf file, an alias from `tunelab models` "
        "(e.g. smollm2-135m-instruct) or a hub id (needs network).")
    adapter_name_or_path: str | None = Field(
        None, description="Folder of a trained adapter to load on top of the model; comma-separated for several.")
    trust_remote_code: bool = Field(False, description="Allow model code shipped with a hub model to run.")
    cache_dir: str | None = Field(None, description="Where hub downloads are stored (default: the Hugging Face cache).")


class DataSection(Section):
    dataset: str | None = Field(
        None, description="Comma-separated names of entries in <dataset_dir>/dataset_info.json to train on.")
    eval_dataset: str | None = Field(
        None, description="Comma-separated datasets evaluated during training (instead of val_size) and answered "
        "by `tunelab predict` (default there: dataset).")
    dataset_dir: str = Field("data", description="Folder holding dataset_info.json and the data files.")
    template: str | None = Field(
        None, description="Named chat template from tunelab's templates/ (see `tunelab templates`); "
        "leave out to use the model's own chat template.")
    default_system: str | None = Field(
        None, description="System prompt used for rows that have none (replaces the template's default).")
    cutoff_len: PositiveInt = Field(2048, description="Maximum tokens per example; longer ones are truncated "
                                    "with LLaMA-Factory's prompt/response budget rule, and counted.")
    max_samples: PositiveInt | None = Field(None, description="Use at most this many rows of each dataset.")
    train_on_prompt: bool = Field(False, description="Also compute the loss on prompt tokens.")
    mask_history: bool = Field(False, description="Train only on the last assistant turn of each conversation.")
    val_size: NonNegativeFloat = Field(
        0.0, description="Held-out evaluation split: a fraction (<1) or a row count (>=1) of the training rows.")
    disable_shuffling: bool = Field(False, description="Train on rows in file order instead of shuffling.")
    on_bad_row: Literal["error", "skip"] = Field(
        "error", description="'error' stops at the first malformed row; 'skip' skips such rows and counts them "
        "in the data report.")
    overwrite_cache: bool = Field(False, description="Tokenize again and replace what tokenized_path holds "
                                  "(without tokenized_path every run tokenizes anyway).")
    tool_format: str | None = Field(
        None, description="How tool descriptions and calls are written into the prompt: default, glm4, llama3, "
        "mistral, qwen (default: the template's own).")
    enable_thinking: bool | None = Field(
        True, description="Reasoning templates (qwen3, ...): true trains the model to think (an empty thought "
        "is added to answers without one, and trained); false removes thoughts and masks the empty one.")
    preserve_thinking: bool = Field(
        False, description="Reasoning templates: keep the thoughts of earlier turns (with mask_history).")
    packing: bool | None = Field(
        None, description="Concatenate examples into rows of cutoff_len tokens (default: on for stage pt, "
        "off for sft).")
    neat_packing: bool = Field(
        False, description="SFT packing where packed examples never attend to each other and position ids "
        "restart per example.")
    mix_strategy: Literal["concat", "interleave_under", "interleave_over", "interleave_once"] = Field(
        "concat", description="How several datasets are combined: one after the other (concat), or rows drawn "
        "in turn (or by interleave_probs) until the first dataset is used up (interleave_under), until every one "
        "has been used up at least once, repeating rows (interleave_over), or until every row was taken once "
        "(interleave_once).")
    interleave_probs: str | None = Field(
        None, description="Comma-separated probabilities of drawing from each dataset when interleaving "
        "(one per dataset, summing to 1; default: in turn).")
    eval_on_each_dataset: bool = Field(
        False, description="Evaluate each eval_dataset on its own (eval_NAME_loss) instead of merged.")
    streaming: bool = Field(False, description="Read, convert and tokenize the data lazily while training instead "
                            "of all at once (files too large for memory; needs max_steps).")
    buffer_size: PositiveInt = Field(16384, description="Examples in the shuffle buffer when streaming.")
    tokenized_path: str | None = Field(
        None, description="Folder where the tokenized data is saved on the first run and loaded from on later "
        "runs (refused if the data, tokenizer or data keys changed since).")
    preprocessing_batch_size: PositiveInt = Field(
        1000, description="Examples per packing batch: packing (and pt's block cutting) happen within a batch, "
        "as in LLaMA-Factory.")
    media_dir: str | None = Field(None, description="Folder that relative image/video/audio paths start from "
                                  "(default: dataset_dir).")
    drop_media: bool = Field(
        False, description="Train on the text of rows that carry images, videos or audios: the media and their "
        "<image>/<video>/<audio> placeholders are removed (counted in the data report). tunelab trains on text "
        "only, so without it such rows are refused.")
    preprocessing_num_workers: PositiveInt | None = Field(
        None, description="Processes used to tokenize the data (default: one; used from 20,000 rows on, below that starting them costs more than it saves).")


class MethodSection(Section):
    stage: Literal["pt", "sft", "rm", "dpo", "kto", "ppo", "grpo"] = Field(
        "sft", description="Training stage: pt (continued pre-training on text), sft (supervised), rm (reward "
        "model on pairs), dpo (direct preference optimisation and its loss family, pref_loss), kto (desirable / "
        "undesirable answers), ppo (online RL against a reward model), grpo (online RL with rule rewards).")
    do_train: bool = Field(True, description="Train (`tunelab train`); default true, but false when do_predict is "
                           "set, as in LLaMA-Factory (where do_train defaults to false).")
    do_predict: bool = Field(False, description="`tunelab train`: answer every eval_dataset row into "
                             "generated_predictions.jsonl and score it into predict_results.json (BLEU-4, ROUGE), "
                             "after training when do_train is true; needs predict_with_generate: true.")
    finetuning_type: Literal["lora", "freeze", "full"] = Field(
        "lora", description="How weights are trained: 'lora' (small adapters), 'freeze' (only some decoder layers) "
        "or 'full' (every weight).")
    freeze_trainable_layers: int = Field(
        2, description="finetuning_type freeze: train the last n decoder layers (n > 0) or the first -n (n < 0).")
    freeze_trainable_modules: str = Field(
        "all", description="finetuning_type freeze: within those layers, train 'all' modules or the named ones "
        "(comma-separated, e.g. mlp,self_attn).")
    freeze_extra_modules: str | None = Field(
        None, description="finetuning_type freeze: modules outside the decoder layers to train too (e.g. "
        "embed_tokens,norm).")
    pure_bf16: bool = Field(False, description="Keep trainable weights in bf16 too and train without autocast "
                            "(less memory, less precise updates; needs bf16 hardware).")

    @model_validator(mode="before")
    @classmethod
    def predict_only_by_default(cls, values: object) -> object:
        """do_train left out with do_predict set means predict only, as LLaMA-Factory's prediction YAMLs mean it."""
        if not isinstance(values, dict) or "do_train" in values or "do_predict" not in values:
            return values
        try:
            predicts = TypeAdapter(bool).validate_python(values["do_predict"])
        except ValidationError:  # the field itself reports the bad value
            return values
        return {**values, "do_train": False} if predicts else values


class LoraSection(Section):
    lora_rank: PositiveInt = Field(8, description="Rank r of the LoRA update.")
    lora_alpha: PositiveInt | None = Field(None, description="LoRA scale numerator; default 2 x lora_rank.")
    lora_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on the LoRA input.")
    lora_target: str = Field("all", description="'all' linear layers (except the output head), or "
                             "comma-separated module names such as q_proj,v_proj.")
    additional_target: str | None = Field(
        None, description="Modules trained fully next to the LoRA adapters and saved with them (e.g. "
        "embed_tokens,lm_head after adding tokens).")
    use_dora: bool = Field(False, description="Weight-decomposed LoRA (DoRA): a learned magnitude per output.")
    use_rslora: bool = Field(False, description="Rank-stabilised LoRA: scale alpha / sqrt(r) instead of alpha / r.")
    pissa_init: bool = Field(False, description="Initialise the adapters from the principal singular vectors "
                             "of the weights (PiSSA) instead of zero.")
    pissa_iter: int = Field(16, ge=-1, description="PiSSA: iterations of fast SVD (-1: exact SVD, slow).")
    loraplus_lr_ratio: PositiveFloat | None = Field(
        None, description="LoRA+: the B matrices learn this many times faster than the A matrices (e.g. 16).")
    loraplus_lr_embedding: PositiveFloat = Field(1e-6, description="LoRA+: learning rate of embedding adapters.")
    create_new_adapter: bool = Field(
        False, description="With adapter_name_or_path: merge those adapters into the weights and train a new "
        "one on top (default: keep training the given adapter).")


class TrainSection(Section):
    output_dir: str | None = Field(None, description="Folder for the adapter, logs, plots and the resolved config "
                                   "(required for training).")
    overwrite_output_dir: bool = Field(False, description="Allow writing into an output_dir that already "
                                       "holds a run.")
    per_device_train_batch_size: PositiveInt = Field(1, description="Examples per step on each device.")
    gradient_accumulation_steps: PositiveInt = Field(1, description="Steps whose gradients are summed "
                                                     "before one optimizer update.")
    learning_rate: PositiveFloat = Field(5e-5, description="Peak learning rate.")
    num_train_epochs: PositiveFloat = Field(3.0, description="Passes over the training data (ignored when "
                                            "max_steps is set).")
    max_steps: int = Field(-1, description="Stop after this many optimizer updates; -1 uses num_train_epochs.")
    lr_scheduler_type: Literal["linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
                               "constant_with_warmup", "inverse_sqrt", "reduce_lr_on_plateau",
                               "cosine_with_min_lr", "warmup_stable_decay"] = Field(
        "cosine", description="Learning-rate schedule (transformers' names).")
    warmup_ratio: float = Field(0.0, ge=0.0, lt=1.0, description="Fraction of the updates spent warming up "
                                "(below 1).")
    warmup_steps: NonNegativeInt = Field(0, description="Warm-up updates (overrides warmup_ratio when > 0).")
    weight_decay: NonNegativeFloat = Field(0.0, description="AdamW weight decay.")
    max_grad_norm: NonNegativeFloat = Field(1.0, description="Gradient clipping norm (0 disables).")
    optim: str = Field("adamw_torch", description="Optimizer name as transformers knows it.")
    adam_beta1: float = Field(0.9, gt=0.0, lt=1.0, description="AdamW beta1.")
    adam_beta2: float = Field(0.999, gt=0.0, lt=1.0, description="AdamW beta2.")
    adam_epsilon: PositiveFloat = Field(1e-8, description="AdamW epsilon.")
    neftune_noise_alpha: PositiveFloat | None = Field(
        None, description="NEFTune: add uniform noise of this scale to the input embeddings while training "
        "(e.g. 5).")
    resume_from_checkpoint: bool | str | None = Field(
        None, description="Continue from a checkpoint folder, or true for the last complete checkpoint in "
        "output_dir (without it, a run whose output_dir holds checkpoints of the same config resumes anyway).")
    seed: int = Field(42, description="Seed for data order, dropout and initialisation.")
    bf16: bool = Field(False, description="Train in bfloat16 where the hardware is fast at it; on a CPU "
                       "without bf16 units tunelab trains in float32 and says so.")
    fp16: bool = Field(False, description="Train in float16 with loss scaling (GPU only).")
    gradient_checkpointing: bool | Literal["cheap"] | None = Field(
        None, description="Recompute every layer's activations in backward to save memory (true), nothing "
        "(false), or only each layer's cheap work, keeping the projections' outputs (cheap: stages pt and sft; "
        "measured on SmolLM2 LoRA: 0.71x the peak memory, about 1.2x the layers' time); default: true from 1B "
        "parameters, false below.")
    disable_gradient_checkpointing: bool = Field(False, description="LLaMA-Factory's switch: true turns "
                                                 "gradient checkpointing off.")
    padding_free: bool = Field(True, description="Concatenate each batch into one row instead of padding it: "
                               "examples never attend to each other and the loss is the same, with no compute "
                               "spent on padding (falls back to padding for models that cannot).")
    logging_steps: PositiveInt = Field(10, description="Log loss, learning rate and speed every N updates.")
    save_strategy: Strategy = Field("steps", description="When checkpoints are saved.")
    save_steps: PositiveInt = Field(500, description="Save a checkpoint every N updates (save_strategy: steps).")
    save_total_limit: PositiveInt | None = Field(None, description="Keep at most this many checkpoints.")
    save_only_model: bool = Field(False, description="Checkpoints hold only the weights (no optimizer or "
                                  "scheduler state): smaller, but a run cannot resume from them.")
    plot_loss: bool = Field(False, description="Write training_loss.png (and the eval loss) at the end.")
    report_to: str = Field("none", description="Experiment trackers transformers supports "
                           "(none, tensorboard, wandb, ...), comma-separated.")
    ddp_timeout: PositiveInt = Field(1800, description="Seconds a distributed process waits for the others.")
    use_cpu: bool = Field(False, description="Train on the CPU even where a GPU is visible.")
    dataloader_num_workers: NonNegativeInt = Field(0, description="Worker processes feeding batches.")
    include_num_input_tokens_seen: bool = Field(True, description="Accepted for LLaMA-Factory compatibility; "
                                                "tunelab always counts tokens.")
    include_effective_tokens_per_second: bool = Field(True, description="Accepted for LLaMA-Factory "
                                                      "compatibility; tunelab always reports tokens/s.")


class EvalSection(Section):
    do_eval: bool = Field(False, description="Evaluate at the end of training (implied by val_size > 0).")
    eval_strategy: Strategy = Field(
        "no", description="When to evaluate during training; 'steps' uses eval_steps. With val_size > 0 and "
        "'no', tunelab evaluates once at the end.")
    eval_steps: PositiveInt | None = Field(None, description="Evaluate every N updates (default: logging_steps).")
    predict_with_generate: bool = Field(
        False, description="With do_predict: generate the answers (LLaMA-Factory key; its prediction YAMLs set it, "
        "and do_predict needs it).")
    compute_accuracy: bool = Field(False, description="Also report token accuracy (argmax = label over the "
                                   "trained tokens) at each evaluation.")
    early_stopping_steps: PositiveInt | None = Field(
        None, description="Stop when metric_for_best_model has not improved for this many evaluations.")
    load_best_model_at_end: bool = Field(
        False, description="At the end, keep the weights of the checkpoint with the best metric_for_best_model "
        "(needs save_strategy = eval_strategy, and save_steps a multiple of eval_steps).")
    metric_for_best_model: str = Field(
        "eval_loss", description="Metric deciding the best checkpoint and early stopping: eval_loss, "
        "eval_accuracy (with compute_accuracy), eval_perplexity (pt), or eval_NAME_loss per eval dataset.")
    greater_is_better: bool | None = Field(
        None, description="Whether a larger metric_for_best_model is better (default: false for losses and "
        "perplexity, true otherwise).")
    per_device_eval_batch_size: PositiveInt = Field(1, description="Examples per evaluation step "
                                                    "(also the batch of `tunelab predict` and `tunelab eval`).")
    eval_tasks: list[Any] = Field(
        default_factory=list, description="`tunelab eval` tasks: name, type, dataset, metrics, extractor, ... "
        "(see docs/evaluation.md).")
    eval_models: list[Any] = Field(
        default_factory=list, description="Models `tunelab eval --compare` puts side by side (default: the base "
        "model, and the base model with adapter_name_or_path).")

    # The entries are validated one by one (config.eval_checks), so every bad entry is reported at once.
    def tasks(self) -> list[EvalTaskSpec]:
        """eval_tasks as typed specs (valid once the config has passed its checks)."""
        return [t for t in parse_tasks(self.eval_tasks)[0] if t is not None]

    def models(self) -> list[EvalModelSpec]:
        """eval_models as typed specs."""
        return [m for m in parse_entries("eval_models", self.eval_models, EvalModelSpec)[0] if m is not None]


class LaunchSection(Section):
    nproc_per_node: PositiveInt | None = Field(
        None, description="Training (or prediction: predict, eval generation) processes on this machine (one per "
        "GPU); more than one launches torchrun (default: the NPROC_PER_NODE environment variable, else 1).")
    nnodes: PositiveInt | None = Field(None, description="Machines taking part (default: NNODES, else 1).")
    node_rank: NonNegativeInt | None = Field(None, description="This machine's index among nnodes (default: "
                                             "NODE_RANK, else 0).")
    master_addr: str | None = Field(None, description="Address of node 0 (default: MASTER_ADDR, else 127.0.0.1).")
    master_port: PositiveInt | None = Field(None, description="Port on node 0 (default: MASTER_PORT, else a free "
                                            "port).")
    deepspeed: str | None = Field(None, description="DeepSpeed JSON config (see examples/deepspeed/); needs GPUs, "
                                  "the deepspeed package and a multi-process launch.")
    fsdp: str | None = Field(None, description="FSDP through accelerate, transformers' options (e.g. "
                             "'full_shard auto_wrap'); needs a multi-process launch.")
    fsdp_config: str | dict[str, object] | None = Field(None, description="FSDP options: a JSON file or a mapping "
                                                      "(transformers' fsdp_config).")
    ddp_backend: Literal["nccl", "gloo", "mpi", "ccl", "hccl", "cncl", "mccl"] | None = Field(
        None, description="Process-group backend (default: nccl on GPUs, gloo on CPUs).")


class InferSection(Section):
    max_new_tokens: PositiveInt = Field(512, description="Most tokens generated for one answer.")
    do_sample: bool = Field(True, description="Sample (true) or decode greedily (false).")
    temperature: PositiveFloat = Field(0.95, description="Sampling temperature.")
    top_p: float = Field(0.7, gt=0.0, le=1.0, description="Nucleus sampling probability mass.")
    top_k: NonNegativeInt = Field(50, description="Sample among the k most likely tokens (0: no limit).")
    repetition_penalty: PositiveFloat = Field(1.0, description="Penalty > 1 discourages repeated tokens.")
    infer_dtype: Literal["auto", "float16", "bfloat16", "float32"] = Field(
        "auto", description="dtype chat, predict, eval and the API decode in (LLaMA-Factory key): auto is float32 on "
        "the CPU (bfloat16 is faster on CPUs with AVX512-BF16/AMX, but its greedy answers can change with the batch "
        "mates) and bfloat16 on a GPU that has it; float16 needs a GPU. `tunelab export` writes it (export_dtype "
        "wins; there auto means the model config's torch_dtype).")


class BackendSection(Section):
    infer_backend: Literal["huggingface", "vllm"] = Field(
        "huggingface", description="What predict, eval generation and the API decode with: huggingface (tunelab's "
        "own engine, CPU or GPU) or vllm (needs `pip install tunelab[vllm]` and a CUDA GPU).")
    vllm_maxlen: PositiveInt = Field(4096, description="vllm: longest sequence (prompt + answer) the engine holds.")
    vllm_gpu_util: float = Field(0.7, gt=0.0, le=1.0, description="vllm: share of GPU memory the engine may take.")
    vllm_enforce_eager: bool = Field(False, description="vllm: run without CUDA graphs (less memory, slower).")
    vllm_max_lora_rank: PositiveInt = Field(32, description="vllm: the largest LoRA rank of the served adapters.")
    vllm_config: EngineOptions = Field(
        None, description="vllm: more engine arguments (vLLM's EngineArgs names), a mapping or a JSON string; they "
        "win over the keys above.")


class ExportSection(Section):
    export_dir: str | None = Field(None, description="Folder the exported model is written to (required for "
                                   "`tunelab export`; must be empty or absent unless overwrite_output_dir).")
    export_format: Literal["hf", "gguf", "ollama"] = Field(
        "hf", description="hf: merged safetensors model folder; gguf: one .gguf file; ollama: the .gguf file "
        "plus a Modelfile for `ollama create`.")
    gguf_type: str | None = Field(
        None, description="GGUF tensor type with export_format gguf/ollama (default f16): "
        f"{', '.join(GGUF_PYTHON_TYPES)} (written in Python), {', '.join(GGUF_LLAMA_QUANTIZE_TYPES)} "
        "(need llama.cpp's llama-quantize on PATH).")
    export_dtype: Literal["auto", "float32", "float16", "bfloat16"] | None = Field(
        None, description="dtype of the exported weights (wins over infer_dtype; auto: the base model config's "
        "torch_dtype). Adapters are merged in float32 first, then cast.")
    export_size: PositiveFloat = Field(5, description="Largest weight shard in GB (LLaMA-Factory's default 5).")
    export_device: Literal["cpu", "auto"] = Field(
        "cpu", description="Where the merge runs: cpu, or auto (a GPU when one is visible).")
    export_legacy_format: bool = Field(False, description="Write pytorch_model.bin shards instead of safetensors.")
    export_hub_model_id: str | None = Field(
        None, description="Hugging Face hub repo to push the export to once the local folder is complete "
        "(needs network and a token).")
    export_quantization_bit: Literal[2, 3, 4, 8] | None = Field(
        None, description="GPTQ bits (LLaMA-Factory key; needs a GPU, optimum and gptqmodel or auto-gptq, export_format "
        "hf). This version checks those and refuses the key: it does not run GPTQ (see docs/export.md).")
    export_quantization_dataset: str | None = Field(
        None, description="Calibration data for GPTQ (a JSON file path, as LLaMA-Factory takes it).")
    export_quantization_nsamples: PositiveInt = Field(128, description="GPTQ calibration samples.")
    export_quantization_maxlen: PositiveInt = Field(1024, description="GPTQ calibration sample length in tokens.")
    export_verify: bool = Field(
        True, description="Compare the exported model with base + adapters on a few prompts (max logit "
        "difference, greedy answers) and write export_report.json.")


class PrefSection(Section):
    """Keys of the preference and RL stages (LLaMA-Factory 0.9.5's RLHFArguments, plus grpo's)."""

    pref_beta: PositiveFloat = Field(0.1, description="dpo, kto: beta of the preference loss (how far the policy "
                                     "may move from the reference; for simpo, the reward scale).")
    pref_ftx: NonNegativeFloat = Field(0.0, description="dpo: weight of the SFT loss on the chosen answers added "
                                       "to the preference loss (0: none).")
    pref_bco_weight: NonNegativeFloat = Field(0.0, description="dpo: weight of the BCO (binary classifier) loss "
                                              "added to the preference loss (0: none).")
    pref_loss: Literal["sigmoid", "hinge", "ipo", "kto_pair", "orpo", "simpo"] = Field(
        "sigmoid", description="dpo: the loss: sigmoid (DPO), hinge, ipo, kto_pair, orpo or simpo (orpo and simpo "
        "need no reference model).")
    dpo_label_smoothing: float = Field(0.0, ge=0.0, le=0.5, description="dpo with pref_loss sigmoid: label "
                                       "smoothing of robust DPO (cDPO), between 0 and 0.5.")
    kto_chosen_weight: PositiveFloat = Field(1.0, description="kto: weight of the desirable examples' losses.")
    kto_rejected_weight: PositiveFloat = Field(1.0, description="kto: weight of the undesirable examples' losses.")
    simpo_gamma: float = Field(0.5, description="dpo with pref_loss simpo: target reward margin.")
    ld_alpha: float | None = Field(None, ge=0.0, le=1.0, description="dpo: LD-DPO's alpha, the weight of the "
                                   "log-probabilities of the longer answer's tokens past the shorter one's length "
                                   "(none: plain sums).")
    ref_model: str | None = Field(None, description="dpo, kto, ppo, grpo: reference model (default: with LoRA, the "
                                  "same weights with the adapter disabled; otherwise a frozen copy of the model).")
    ref_model_adapters: str | None = Field(None, description="Adapters of ref_model (comma-separated).")
    ref_model_quantization_bit: Literal[4, 8] | None = Field(
        None, description="LLaMA-Factory's 4/8-bit reference model: refused (tunelab loads the reference "
        "unquantized).")
    reward_model: str | None = Field(None, description="ppo: the reward model: a `stage: rm` output folder "
                                     "(reward_model_type lora or full) or the URL of a score endpoint (api).")
    reward_model_adapters: str | None = Field(None, description="ppo: adapters of the reward model "
                                              "(comma-separated).")
    reward_model_quantization_bit: Literal[4, 8] | None = Field(
        None, description="LLaMA-Factory's 4/8-bit reward model: refused (tunelab loads the reward model "
        "unquantized).")
    reward_model_type: Literal["lora", "full", "api"] = Field(
        "lora", description="ppo: lora (a LoRA reward adapter on the policy's own base model; needs "
        "finetuning_type lora), full (a separate reward model), api (an HTTP endpoint answering POST "
        "/v1/score/evaluation, such as `tunelab api` on a reward model).")
    reward_api_key_env: str | None = Field(
        None, description="ppo with reward_model_type api: name of the environment variable holding the "
        "endpoint's API key (the key itself never goes in the config).")
    ppo_buffer_size: PositiveInt = Field(1, description="ppo: mini-batches collected into the experience buffer "
                                         "of one optimisation step.")
    ppo_epochs: PositiveInt = Field(4, description="ppo: optimisation epochs over each experience buffer.")
    ppo_score_norm: bool = Field(False, description="ppo: normalise the reward model's scores (running mean and "
                                 "standard deviation).")
    ppo_target: PositiveFloat = Field(6.0, description="ppo: target KL of the adaptive KL controller.")
    ppo_whiten_rewards: bool = Field(False, description="ppo: whiten the rewards before computing advantages.")
    num_generations: int = Field(4, ge=2, description="grpo: answers sampled per prompt (the group whose mean "
                                 "and spread normalise each answer's reward).")
    reward_funcs: list[Any] | str | None = Field(
        None, description="grpo: rewards summed into each answer's score: accuracy, format, length or "
        "path/to/rewards.py:function, as a comma-separated string or a list of entries with their settings "
        "(name, weight, extractor, pattern, target, rule; see docs/preference.md).")
    grpo_beta: NonNegativeFloat = Field(0.04, description="grpo: weight of the KL penalty towards the reference "
                                        "model (0: no reference model is used).")
    grpo_epsilon: PositiveFloat = Field(0.2, description="grpo: clipping range of the policy ratio.")

    def rewards(self) -> list[RewardSpec]:
        """reward_funcs as typed entries (valid once the config has passed its checks)."""
        return [r for r in parse_rewards(self.reward_funcs)[0] if r is not None]


SECTIONS: dict[str, type[Section]] = {
    "model": ModelSection,
    "data": DataSection,
    "method": MethodSection,
    "lora": LoraSection,
    "train": TrainSection,
    "eval": EvalSection,
    "launch": LaunchSection,
    "infer": InferSection,
    "backend": BackendSection,
    "export": ExportSection,
    "pref": PrefSection,
}


class RunConfig(BaseModel):
    """A whole validated run: one instance per section."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())
    model: ModelSection
    data: DataSection
    method: MethodSection
    lora: LoraSection
    train: TrainSection
    eval: EvalSection
    launch: LaunchSection
    infer: InferSection
    backend: BackendSection
    export: ExportSection
    pref: PrefSection

    def flat(self) -> dict[str, object]:
        """All keys and values in the flat (LLaMA-Factory) namespace, in section order."""
        out: dict[str, object] = {}
        for name in SECTIONS:
            out.update(getattr(self, name).model_dump())
        return out


def key_owners() -> dict[str, str]:
    """Flat key -> name of the section that owns it."""
    owners: dict[str, str] = {}
    for section_name, section in SECTIONS.items():
        for key in section.model_fields:
            if key in owners:
                raise RuntimeError(f"config key {key} is defined in two sections")
            owners[key] = section_name
    return owners


def describe_key(key: str) -> str:
    """The documentation of one flat key."""
    section = SECTIONS[key_owners()[key]]
    return section.model_fields[key].description or ""
