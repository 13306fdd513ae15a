"""Stage grpo on SmolLM2 (CPU): the toy label task's mean reward rises within a few dozen steps."""

from __future__ import annotations

import json

from .clirun import tunelab

LAST = 6  # steps averaged at the end


def test_grpo_raises_the_mean_reward_on_the_label_task(tmp_path) -> None:
    out = tmp_path / "grpo"
    # no KL reference (grpo_beta 0): one forward and backward per step; sampling is seeded per answer
    result = tunelab("train", "examples/grpo_lora.yaml", f"output_dir={out}", "max_steps=20", "grpo_beta=0",
                     "save_steps=1000", "report_to=none", timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    records = [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines()]
    steps = [r for r in records if "reward" in r]
    assert len(steps) == 20
    # step 1 scores the base model's own answers (its update comes after them); the last steps the trained ones
    first, last = steps[0], steps[-LAST:]
    reward = sum(r["reward"] for r in last) / LAST
    bare = sum(r["rewards/format"] for r in last) / LAST
    assert reward > first["reward"] + 0.2, [r["reward"] for r in steps]
    assert bare >= 0.75 and bare > first["rewards/format"] + 0.25, [r["rewards/format"] for r in steps]
    assert sum(r["completion_length"] for r in last) / LAST < first["completion_length"]  # bare labels now
    for name in ("reward", "reward_std", "kl", "completion_length", "rewards_accuracy", "rewards_format"):
        assert (out / f"training_{name}.png").is_file(), name
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["stage"] == "grpo" and summary["completions_per_second"] > 0
    assert "sampled answers/s" in result.stderr
