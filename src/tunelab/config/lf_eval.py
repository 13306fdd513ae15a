"""LLaMA-Factory's `llamafactory-cli eval` keys (task, task_dir, lang, n_shot, save_dir, batch_size) as a tunelab
eval task, so its eval YAML runs as it is under `tunelab eval`."""

from __future__ import annotations

from tunelab.config.errors import Problem

EVAL_KEYS = ("task", "task_dir", "lang", "n_shot", "save_dir", "batch_size", "download_mode")
SPLIT_FOLDERS = {"validation": "val"}  # LLaMA-Factory's split names -> the benchmark's folder names


def from_llamafactory_eval(flat: dict[str, object]) -> tuple[dict[str, object], list[Problem]]:
    """Turn `task: mmlu_test` (+ task_dir, lang, n_shot, save_dir, batch_size) into one choice_logits task."""
    if "task" not in flat:
        return flat, []
    flat = dict(flat)
    values = {key: flat.pop(key) for key in EVAL_KEYS if key in flat}
    problems = []
    if flat.get("eval_tasks"):
        problems.append(Problem("task", "LLaMA-Factory's task and tunelab's eval_tasks are both set; keep one"))
    name, _, split = str(values["task"]).partition("_")
    if not split:
        problems.append(Problem("task", f"{values['task']!r} is not like mmlu_test, ceval_validation or cmmlu_test "
                                        "(benchmark folder name, underscore, split)"))
    task = {"name": str(values["task"]), "type": "choice_logits",
            "task_dir": f"{str(values.get('task_dir', 'evaluation')).rstrip('/')}/{name}",
            "split": SPLIT_FOLDERS.get(split, split), "n_shot": values.get("n_shot", 5), "lang": values.get("lang", "en")}
    flat["eval_tasks"] = [task]
    for ours, theirs in (("output_dir", "save_dir"), ("per_device_eval_batch_size", "batch_size")):
        if theirs in values:
            if ours in flat and flat[ours] != values[theirs]:
                problems.append(Problem(theirs, f"{theirs} and {ours} are both set; keep one"))
            flat[ours] = values[theirs]
    return flat, problems
