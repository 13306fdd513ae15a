"""Checks of the preference and RL keys (section pref) against the stage and method, before anything loads.

LLaMA-Factory 0.9.5 refuses most of these in FinetuningArguments.__post_init__ (ppo without reward_model, a lora
reward model on a full run, label smoothing with another loss, PiSSA with a reference model); tunelab also says
where a reward model folder lacks its value head (or, for reward_model_type lora, its adapter) and where a key would
be ignored, refuses quantized reference and reward models (which it does not load), and refuses what the rm and ppo
trainers do not do (DeepSpeed, FSDP; for ppo several processes and evaluation), so none of it surfaces after the
model has loaded.
A reward model folder (the output_dir of `stage: rm`) holds the adapter (adapter_config.json and its weights) or
the whole model, plus the value head: value_head.safetensors (or LLaMA-Factory's older value_head.bin).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from tunelab.config.errors import Problem
from tunelab.config.launch_plan import planned_processes
from tunelab.config.schema import DataSection, EvalSection, LaunchSection, LoraSection, MethodSection, PrefSection
from tunelab.runtime import env

# model/value_head.py writes and reads these names; config cannot import model, so they are repeated here
VALUE_HEAD_FILES = ("value_head.safetensors", "value_head.bin")
NO_REFERENCE_LOSSES = ("orpo", "simpo")
REFERENCE_STAGES = ("dpo", "kto", "ppo", "grpo")  # the stages that can compare the policy with a reference model


def uses_reference(method: MethodSection, pref: PrefSection) -> bool:
    """Whether the stage compares the policy with a reference model (LLaMA-Factory's use_ref_model, plus kto and
    ppo, which always keep one, and grpo with a KL penalty)."""
    return no_reference(method, pref) is None


def is_url(text: str) -> bool:
    """An http(s) URL with a host."""
    parsed = urlparse(text)
    return parsed.scheme in ("http", "https") and bool(parsed.netloc)


def reward_model_check(method: MethodSection, pref: PrefSection) -> list[Problem]:
    """ppo needs a reward model of a type that suits the run: a lora one on a LoRA run, an http(s) URL for api, a
    folder with a value head for lora and full."""
    if method.stage != "ppo":
        return []
    if not pref.reward_model:
        return [Problem("reward_model", "stage ppo scores its answers with a reward model: set reward_model to the "
                                        "output_dir of a `stage: rm` run (or, with reward_model_type: api, the URL "
                                        "of a score endpoint)")]
    if pref.reward_model_type == "api":
        return api_problems(pref)
    problems = []
    if pref.reward_model_type == "lora" and method.finetuning_type != "lora":
        problems.append(Problem("reward_model_type", f"lora puts the reward adapter on the policy's own base model, "
                                                     f"which needs finetuning_type lora (this run is "
                                                     f"{method.finetuning_type}); set reward_model_type: full with "
                                                     "a whole reward model, or finetuning_type: lora"))
    if pref.reward_model_adapters and pref.reward_model_type == "lora":
        problems.append(Problem("reward_model_adapters", "only used with reward_model_type full (the adapters of a "
                                                         "separate reward model); with lora, reward_model is the "
                                                         "adapter: remove reward_model_adapters"))
    if is_url(pref.reward_model):
        return problems + [Problem("reward_model", f"{pref.reward_model} is a URL; to score through an endpoint "
                                                   "set reward_model_type: api")]
    return problems + reward_folder_problems(pref)


def api_problems(pref: PrefSection) -> list[Problem]:
    """reward_model_type api: an http(s) URL, and no adapters (nothing is loaded)."""
    problems = []
    if not is_url(str(pref.reward_model)):
        problems.append(Problem("reward_model", f"{pref.reward_model!r} is not an http(s) URL; with "
                                                "reward_model_type api give the endpoint, e.g. "
                                                "http://localhost:8000 (`tunelab api` on a reward model serves "
                                                "POST /v1/score/evaluation), or set reward_model_type: lora or full"))
    if pref.reward_model_adapters is not None:
        problems.append(Problem("reward_model_adapters", "reward_model_type api loads no reward model here (the "
                                                         "endpoint scores): remove reward_model_adapters"))
    return problems


def reward_folder_problems(pref: PrefSection) -> list[Problem]:
    """The reward model folder (or, for full with adapters, the last adapter folder) exists and holds a value
    head: what `stage: rm` writes."""
    folder = Path(str(pref.reward_model))
    if not folder.is_dir():
        return [Problem("reward_model", f"{folder}: no such folder (paths are relative to the folder tunelab runs "
                                        "in); give the output_dir of a `stage: rm` run")]
    listed = pref.reward_model_adapters if pref.reward_model_type == "full" else None  # lora: reward_model is one
    adapters = [name.strip() for name in (listed or "").split(",") if name.strip()]
    key, head_folder = ("reward_model_adapters", Path(adapters[-1])) if adapters else ("reward_model", folder)
    if not head_folder.is_dir():
        return [Problem(key, f"{head_folder}: no such folder; give the adapters of the reward model")]
    if any((head_folder / name).is_file() for name in VALUE_HEAD_FILES):
        return lora_adapter_problems(pref, folder)
    holds = "an adapter (adapter_config.json)" if (head_folder / "adapter_config.json").is_file() else \
        "a model (config.json)" if (head_folder / "config.json").is_file() else "neither an adapter nor a model"
    return [Problem(key, f"{head_folder} holds {holds} but no value head ({' or '.join(VALUE_HEAD_FILES)}), so it is "
                         "not a reward model; train one with stage: rm and give its output_dir")]


def lora_adapter_problems(pref: PrefSection, folder: Path) -> list[Problem]:
    """reward_model_type lora switches the folder's adapter in on the policy: the folder must hold one."""
    if pref.reward_model_type != "lora" or (folder / "adapter_config.json").is_file():
        return []
    return [Problem("reward_model", f"{folder} holds no LoRA adapter (adapter_config.json), which reward_model_type: "
                                    "lora needs; give the output_dir of a LoRA stage: rm run, or set "
                                    "reward_model_type: full for a full or freeze one")]


def no_reference(method: MethodSection, pref: PrefSection) -> tuple[str, str] | None:
    """Why this run uses no reference model, and the alternative to removing the key (None: it uses one)."""
    if method.stage == "dpo" and pref.pref_loss in NO_REFERENCE_LOSSES:
        return (f"pref_loss {pref.pref_loss} uses no reference model (it compares the answers' own "
                "log-probabilities)", "use a loss with a reference (sigmoid, hinge, ipo, kto_pair)")
    if method.stage == "grpo" and pref.grpo_beta == 0:
        return "grpo_beta 0 uses no reference model (no KL penalty)", "set grpo_beta above 0 (e.g. 0.04)"
    if method.stage not in REFERENCE_STAGES:
        return (f"stage {method.stage} uses no reference model",
                f"use a stage that has one ({', '.join(REFERENCE_STAGES)})")
    return None


def ref_model_check(method: MethodSection, pref: PrefSection) -> list[Problem]:
    """The reference keys only where a reference is used; adapters only with a ref_model to put them on."""
    unused = no_reference(method, pref)
    if unused is not None:
        why, alternative = unused
        return [Problem(key, f"{why}: remove {key}, or {alternative}")
                for key in ("ref_model", "ref_model_adapters") if getattr(pref, key)]
    if pref.ref_model_adapters and not pref.ref_model:
        return [Problem("ref_model_adapters", "adapters of ref_model, which is not set: set ref_model to their base "
                                              "model, or remove ref_model_adapters")]
    return []


def label_smoothing_check(method: MethodSection, pref: PrefSection) -> list[Problem]:
    """dpo_label_smoothing smooths the sigmoid loss only."""
    if method.stage == "dpo" and pref.dpo_label_smoothing > 0 and pref.pref_loss != "sigmoid":
        return [Problem("dpo_label_smoothing", f"only the sigmoid loss is smoothed (robust DPO), not pref_loss "
                                               f"{pref.pref_loss} (LLaMA-Factory refuses it too): set "
                                               "dpo_label_smoothing: 0, or pref_loss: sigmoid")]
    return []


# LLaMA-Factory quantizes these with bitsandbytes; tunelab loads neither quantized, so both are refused for every
# stage, before anything loads (the loaders would fail on them, or ignore them)
QUANTIZED_MODEL_FIXES = {
    "ref_model_quantization_bit": "quantized reference models are not supported by tunelab: remove "
                                  "ref_model_quantization_bit; the reference then loads unquantized, in the training "
                                  "dtype (with finetuning_type lora and no ref_model it is the policy's own weights "
                                  "with the adapter disabled: no second model in memory)",
    "reward_model_quantization_bit": "quantized reward models are not supported by tunelab: remove "
                                     "reward_model_quantization_bit; a full reward model then loads unquantized, in "
                                     "the policy's dtype (reward_model_type lora keeps no second model: the reward "
                                     "adapter is switched in on the policy's own base)",
}


def quantization_check(pref: PrefSection) -> list[Problem]:
    """ref_model_quantization_bit and reward_model_quantization_bit, refused whatever the stage."""
    return [Problem(key, fix) for key, fix in QUANTIZED_MODEL_FIXES.items() if getattr(pref, key) is not None]


def sharding_problems(method: MethodSection, launch: LaunchSection) -> list[Problem]:
    """rm and ppo train without DeepSpeed or FSDP: rm saves its value head unsharded, ppo runs in one process."""
    why = {"rm": "stage rm trains with plain data parallelism (the value head is not saved from shards)",
           "ppo": "stage ppo runs in one process"}.get(method.stage)
    if why is None:
        return []
    fix = "; nproc_per_node: N alone trains data-parallel" if method.stage == "rm" else ""
    return [Problem(key, f"{why}: remove {key}{fix}") for key in ("deepspeed", "fsdp") if getattr(launch, key)]


def stage_launch_check(data: DataSection, method: MethodSection, launch: LaunchSection,
                       evaluation: EvalSection) -> list[Problem]:
    """What the rm and ppo trainers do not do, refused before the model loads: rm shards nothing (no DeepSpeed or
    FSDP); ppo runs in one process and does not evaluate (as in LLaMA-Factory)."""
    problems = sharding_problems(method, launch)
    if method.stage != "ppo":
        return problems
    processes, source = planned_processes(launch, env.variables())
    if processes > 1:
        fix = ("launch `tunelab train` without torchrun" if source == "WORLD_SIZE" else
               f"unset {source}" if source.isupper() else f"set {source}: 1")
        problems.append(Problem(source, f"{processes} processes, but stage ppo runs in one process: {fix}"))
    evaluating = {"val_size": data.val_size > 0, "eval_dataset": bool(data.eval_dataset),
                  "eval_strategy": evaluation.eval_strategy != "no"}
    return problems + [Problem(key, f"stage ppo does not evaluate (as in LLaMA-Factory): remove {key}")
                       for key, set_ in evaluating.items() if set_]


PISSA_ALTERNATIVES = {"dpo": ", or use pref_loss orpo or simpo, which need no reference",
                      "grpo": ", or set grpo_beta: 0 (no KL penalty, no reference)"}


def pissa_check(method: MethodSection, lora: LoraSection, pref: PrefSection) -> list[Problem]:
    """PiSSA rewrites the base weights with the adapter's principal part taken out, so the adapter-disabled model is
    no longer the reference kto, ppo, grpo with a KL penalty and dpo with a reference need (LLaMA-Factory refuses
    the combination)."""
    if not lora.pissa_init or not uses_reference(method, pref):
        return []
    what = f"pref_loss {pref.pref_loss}" if method.stage == "dpo" else f"stage {method.stage}"
    return [Problem("pissa_init", f"{what} compares the policy with the model as it was, which PiSSA changes (it "
                                  "moves the principal part of the weights into the adapter; LLaMA-Factory refuses "
                                  f"it too): remove pissa_init{PISSA_ALTERNATIVES.get(method.stage, '')}")]


def preference_checks(method: MethodSection, pref: PrefSection, lora: LoraSection | None = None) -> list[Problem]:
    """Every problem of the pref keys for this stage and method (pissa_init's only when the lora section
    validated)."""
    problems = (reward_model_check(method, pref) + ref_model_check(method, pref) + label_smoothing_check(method, pref)
                + quantization_check(pref))
    return problems + (pissa_check(method, lora, pref) if lora is not None else [])
