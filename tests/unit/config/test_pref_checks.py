"""config/pref_checks.py: the preference and RL keys against the stage and method, each problem naming its key(s)
and the fix, before any model loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunelab.config import pref_checks
from tunelab.config.errors import ConfigError
from tunelab.config.load import build

MINIMAL = {"model_name_or_path": "tiny", "dataset": "demo", "output_dir": "out"}


def problem_list(**flat: object) -> list[tuple[str, str]]:
    """Every (key, message) of a training config, in order (none: an empty list)."""
    try:
        build({**MINIMAL, **flat}, "train")
    except ConfigError as exc:
        return [(p.key, p.message) for p in exc.problems]
    return []


def problems(**flat: object) -> dict[str, str]:
    """The problems of a training config, by key (none: an empty dict)."""
    return dict(problem_list(**flat))


def reward_folder(tmp_path: Path, *files: str) -> Path:
    """A folder as `stage: rm` writes it, with the given files."""
    folder = tmp_path / "rm"
    folder.mkdir(exist_ok=True)
    for name in files:
        (folder / name).write_bytes(b"{}")
    return folder


def test_ppo_needs_a_reward_model() -> None:
    message = problems(stage="ppo")["reward_model"]
    assert message.startswith("stage ppo scores its answers with a reward model: set reward_model to the output_dir")


def test_a_lora_reward_model_needs_a_lora_run(tmp_path: Path) -> None:
    folder = reward_folder(tmp_path, "adapter_config.json", "value_head.safetensors")
    found = problems(stage="ppo", reward_model=str(folder), finetuning_type="full")
    assert set(found) == {"reward_model_type"} and "needs finetuning_type lora (this run is full)" in \
        found["reward_model_type"]
    assert problems(stage="ppo", reward_model=str(folder)) == {}


@pytest.mark.parametrize("url", ["localhost:8000", "ftp://host/score", "http://", "rm-folder"])
def test_an_api_reward_model_needs_an_http_url(url: str) -> None:
    message = problems(stage="ppo", reward_model=url, reward_model_type="api")["reward_model"]
    assert message.startswith(f"{url!r} is not an http(s) URL; with reward_model_type api give the endpoint")


def test_an_api_reward_model_loads_nothing_to_adapt() -> None:
    assert problems(stage="ppo", reward_model="https://rm.example.com", reward_model_type="api") == {}
    found = problems(stage="ppo", reward_model="http://localhost:8000", reward_model_type="api",
                     reward_model_adapters="a")
    assert set(found) == {"reward_model_adapters"}
    assert "reward_model_type api loads no reward model here" in found["reward_model_adapters"]


def test_a_url_with_a_local_reward_model_type_says_api() -> None:
    found = problems(stage="ppo", reward_model="http://localhost:8000")
    assert found == {"reward_model": "http://localhost:8000 is a URL; to score through an endpoint set "
                                     "reward_model_type: api"}


def test_a_lora_reward_model_folder_holds_an_adapter(tmp_path: Path) -> None:
    folder = reward_folder(tmp_path, "config.json", "value_head.safetensors")  # a full reward model
    assert problems(stage="ppo", reward_model=str(folder)) == {
        "reward_model": f"{folder} holds no LoRA adapter (adapter_config.json), which reward_model_type: lora needs; "
                        "give the output_dir of a LoRA stage: rm run, or set reward_model_type: full for a full or "
                        "freeze one"}
    assert problems(stage="ppo", reward_model=str(folder), reward_model_type="full") == {}


def test_a_missing_reward_model_folder(tmp_path: Path) -> None:
    message = problems(stage="ppo", reward_model=str(tmp_path / "nope"))["reward_model"]
    assert message.startswith(f"{tmp_path / 'nope'}: no such folder") and "`stage: rm` run" in message


@pytest.mark.parametrize(("files", "holds"), [
    (("adapter_config.json", "adapter_model.safetensors"), "an adapter (adapter_config.json)"),
    (("config.json", "model.safetensors"), "a model (config.json)"),
    ((), "neither an adapter nor a model"),
])
def test_a_reward_model_without_a_value_head_is_not_a_reward_model(files: tuple[str, ...], holds: str,
                                                                   tmp_path: Path) -> None:
    folder = reward_folder(tmp_path, *files)
    message = problems(stage="ppo", reward_model=str(folder), reward_model_type="full")["reward_model"]
    assert message == (f"{folder} holds {holds} but no value head (value_head.safetensors or value_head.bin), so it "
                       "is not a reward model; train one with stage: rm and give its output_dir")


@pytest.mark.parametrize("head", ["value_head.safetensors", "value_head.bin"])
def test_a_reward_model_folder_with_its_value_head(head: str, tmp_path: Path) -> None:
    folder = reward_folder(tmp_path, "config.json", head)
    assert problems(stage="ppo", reward_model=str(folder), reward_model_type="full") == {}


def test_a_full_reward_model_with_adapters_keeps_its_head_in_the_last_adapter(tmp_path: Path) -> None:
    base = reward_folder(tmp_path, "config.json")
    adapter = tmp_path / "rm-adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    found = problems(stage="ppo", reward_model=str(base), reward_model_type="full", reward_model_adapters=str(adapter))
    assert set(found) == {"reward_model_adapters"} and "holds an adapter (adapter_config.json) but no value head" in \
        found["reward_model_adapters"]
    (adapter / "value_head.safetensors").write_bytes(b"")
    assert problems(stage="ppo", reward_model=str(base), reward_model_type="full",
                    reward_model_adapters=str(adapter)) == {}


def test_lora_reward_model_takes_no_adapters(tmp_path: Path) -> None:
    folder = reward_folder(tmp_path, "adapter_config.json", "value_head.safetensors")
    found = problems(stage="ppo", reward_model=str(folder), reward_model_adapters="x")
    assert set(found) == {"reward_model_adapters"} and "only used with reward_model_type full" in \
        found["reward_model_adapters"]


def test_reward_keys_are_not_checked_outside_ppo() -> None:
    assert problems(stage="dpo", reward_model="not-a-folder") == {}


@pytest.mark.parametrize("loss", ["hinge", "ipo", "kto_pair", "orpo", "simpo"])
def test_label_smoothing_is_only_for_sigmoid(loss: str) -> None:
    found = problems(stage="dpo", pref_loss=loss, dpo_label_smoothing=0.1)
    assert found == {"dpo_label_smoothing": f"only the sigmoid loss is smoothed (robust DPO), not pref_loss {loss} "
                                            "(LLaMA-Factory refuses it too): set dpo_label_smoothing: 0, or "
                                            "pref_loss: sigmoid"}
    assert problems(stage="dpo", pref_loss="sigmoid", dpo_label_smoothing=0.1) == {}


@pytest.mark.parametrize("loss", ["orpo", "simpo"])
def test_orpo_and_simpo_use_no_reference(loss: str) -> None:
    found = problems(stage="dpo", pref_loss=loss, ref_model="base", ref_model_adapters="sft-adapter")
    assert set(found) == {"ref_model", "ref_model_adapters"}
    assert found["ref_model"].startswith(f"pref_loss {loss} uses no reference model")
    assert problems(stage="dpo", pref_loss="sigmoid", ref_model="base", ref_model_adapters="sft-adapter") == {}


@pytest.mark.parametrize("stage", ["rm", "sft", "pt"])
def test_stages_without_a_reference_refuse_the_reference_keys(stage: str) -> None:
    found = problems(stage=stage, ref_model="base", ref_model_adapters="sft-adapter")
    assert found == {key: f"stage {stage} uses no reference model: remove {key}, or use a stage that has one (dpo, "
                          "kto, ppo, grpo)" for key in ("ref_model", "ref_model_adapters")}


def test_grpo_takes_a_ref_model_unless_grpo_beta_is_0() -> None:
    assert problems(stage="grpo", reward_funcs="accuracy", ref_model="base", ref_model_adapters="sft-adapter") == {}
    found = problems(stage="grpo", reward_funcs="accuracy", grpo_beta=0, ref_model="base")
    assert found == {"ref_model": "grpo_beta 0 uses no reference model (no KL penalty): remove ref_model, or set "
                                  "grpo_beta above 0 (e.g. 0.04)"}


def test_ref_model_adapters_need_a_ref_model() -> None:
    assert problems(stage="kto", ref_model_adapters="sft-adapter") == {
        "ref_model_adapters": "adapters of ref_model, which is not set: set ref_model to their base model, or remove "
                              "ref_model_adapters"}


@pytest.mark.parametrize("flat", [
    {"stage": "dpo", "ref_model": "base"}, {"stage": "dpo"}, {"stage": "kto", "ref_model": "base"},
    {"stage": "ppo", "ref_model": "base"}, {"stage": "grpo", "reward_funcs": "accuracy"}, {"stage": "sft"},
])
def test_a_quantized_reference_is_refused_for_every_stage(flat: dict[str, object]) -> None:
    message = problems(ref_model_quantization_bit=4, **flat)["ref_model_quantization_bit"]
    assert message.startswith("quantized reference models are not supported by tunelab: remove "
                              "ref_model_quantization_bit; the reference then loads unquantized")


@pytest.mark.parametrize("reward_type", ["full", "lora", "api"])
def test_a_quantized_reward_model_is_refused_whatever_its_type(reward_type: str, tmp_path: Path) -> None:
    folder = reward_folder(tmp_path, "config.json", "adapter_config.json", "value_head.safetensors")
    reward_model = "http://localhost:8000" if reward_type == "api" else str(folder)
    found = problems(stage="ppo", reward_model=reward_model, reward_model_type=reward_type,
                     reward_model_quantization_bit=8)
    assert set(found) == {"reward_model_quantization_bit"}
    assert found["reward_model_quantization_bit"].startswith("quantized reward models are not supported by tunelab: "
                                                             "remove reward_model_quantization_bit")
    assert set(problems(stage="dpo", reward_model_quantization_bit=4)) == {"reward_model_quantization_bit"}


@pytest.mark.parametrize(("flat", "what"), [
    ({"stage": "kto"}, "stage kto"),
    ({"stage": "dpo"}, "pref_loss sigmoid"),
    ({"stage": "dpo", "pref_loss": "ipo"}, "pref_loss ipo"),
])
def test_pissa_with_a_reference(flat: dict[str, object], what: str) -> None:
    message = problems(pissa_init=True, **flat)["pissa_init"]
    assert message.startswith(f"{what} compares the policy with the model as it was, which PiSSA changes")


def test_pissa_with_ppo(tmp_path: Path) -> None:
    folder = reward_folder(tmp_path, "adapter_config.json", "value_head.safetensors")
    assert set(problems(stage="ppo", reward_model=str(folder), pissa_init=True)) == {"pissa_init"}


def test_pissa_with_grpos_kl_penalty() -> None:
    message = problems(stage="grpo", reward_funcs="accuracy", pissa_init=True)["pissa_init"]
    assert message.startswith("stage grpo compares the policy with the model as it was, which PiSSA changes")
    assert message.endswith("remove pissa_init, or set grpo_beta: 0 (no KL penalty, no reference)")


@pytest.mark.parametrize("flat", [{"stage": "dpo", "pref_loss": "orpo"}, {"stage": "dpo", "pref_loss": "simpo"},
                                  {"stage": "rm"}, {"stage": "sft"}, {"stage": "grpo", "grpo_beta": 0}])
def test_pissa_without_a_reference_is_fine(flat: dict[str, object]) -> None:
    assert "pissa_init" not in problems(pissa_init=True, **flat)


def test_all_problems_are_reported_together() -> None:
    found = problems(stage="dpo", pref_loss="simpo", dpo_label_smoothing=0.2, ref_model_adapters="a",
                     ref_model_quantization_bit=4)
    assert set(found) == {"dpo_label_smoothing", "ref_model_adapters", "ref_model_quantization_bit"}


@pytest.fixture()
def one_process(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No launch variable set: a plain single-process run unless a test sets one."""
    for name in ("NPROC_PER_NODE", "NNODES", "NODE_RANK", "FORCE_TORCHRUN", "LOCAL_RANK", "WORLD_SIZE", "RANK"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def ppo(tmp_path: Path, **flat: object) -> list[tuple[str, str]]:
    """The problems of a ppo config with a valid lora reward model, plus flat."""
    folder = reward_folder(tmp_path, "adapter_config.json", "value_head.safetensors")
    return problem_list(stage="ppo", reward_model=str(folder), **flat)


@pytest.mark.parametrize("key", ["deepspeed", "fsdp"])
def test_rm_refuses_sharding_before_the_model_loads(key: str, one_process: pytest.MonkeyPatch) -> None:
    message = ("stage rm trains with plain data parallelism (the value head is not saved from shards): remove "
               f"{key}; nproc_per_node: N alone trains data-parallel")
    value = "examples/deepspeed/ds_z2_config.json" if key == "deepspeed" else "full_shard auto_wrap"
    assert (key, message) in problem_list(stage="rm", **{key: value})
    assert (key, message) not in problem_list(stage="sft", **{key: value})


@pytest.mark.parametrize("key", ["deepspeed", "fsdp"])
def test_ppo_refuses_sharding(key: str, tmp_path: Path, one_process: pytest.MonkeyPatch) -> None:
    value = "examples/deepspeed/ds_z2_config.json" if key == "deepspeed" else "full_shard auto_wrap"
    assert (key, f"stage ppo runs in one process: remove {key}") in ppo(tmp_path, **{key: value})


@pytest.mark.parametrize(("flat", "variables", "expected"), [
    ({"nproc_per_node": 2}, {}, ("nproc_per_node", "2 processes, but stage ppo runs in one process: set "
                                                   "nproc_per_node: 1")),
    ({}, {"NPROC_PER_NODE": "4"}, ("NPROC_PER_NODE", "4 processes, but stage ppo runs in one process: unset "
                                                     "NPROC_PER_NODE")),
    ({"nnodes": 2, "master_addr": "10.0.0.1"}, {}, ("nnodes", "2 processes, but stage ppo runs in one process: set "
                                                              "nnodes: 1")),
    ({}, {"LOCAL_RANK": "0", "WORLD_SIZE": "2"}, ("WORLD_SIZE", "2 processes, but stage ppo runs in one process: "
                                                                "launch `tunelab train` without torchrun")),
])
def test_ppo_refuses_several_processes(flat: dict[str, object], variables: dict[str, str],
                                       expected: tuple[str, str], tmp_path: Path,
                                       one_process: pytest.MonkeyPatch) -> None:
    for name, value in variables.items():
        one_process.setenv(name, value)
    assert ppo(tmp_path, **flat) == [expected]


def test_ppo_in_one_process_and_without_evaluation_is_fine(tmp_path: Path, one_process: pytest.MonkeyPatch) -> None:
    assert ppo(tmp_path) == []
    one_process.setenv("FORCE_TORCHRUN", "1")  # torchrun with a single process
    assert ppo(tmp_path) == []


def test_ppo_refuses_evaluation(tmp_path: Path, one_process: pytest.MonkeyPatch) -> None:
    found = ppo(tmp_path, val_size=0.1, eval_strategy="steps", eval_steps=5)
    assert found == [(key, f"stage ppo does not evaluate (as in LLaMA-Factory): remove {key}")
                     for key in ("val_size", "eval_strategy")]
    assert ppo(tmp_path, eval_dataset="demo") == [("eval_dataset", "stage ppo does not evaluate (as in "
                                                                   "LLaMA-Factory): remove eval_dataset")]
    assert problem_list(stage="sft", val_size=0.1) == []
