"""`preference`: held-out pairs of a ranking dataset; does the model prefer the chosen answer (no generation)?

A reward model (an rm output folder with its value head) is scored by its own scores; a policy by sequence
log-probability (eval/preference.py says why the sum, and reports the length-normalised share beside it); a model
with adapters also by DPO's implicit reward against its base weights (adapter disabled). Under `tunelab eval
--compare` the kind draws each model's per-pair margins.
"""

from __future__ import annotations

from pydantic import Field, PositiveFloat, PositiveInt

from tunelab.config.eval_tasks import EvalTaskSpec
from tunelab.config.schema import RunConfig
from tunelab.data.examples import Pair
from tunelab.data.registry import lookup
from tunelab.eval.errors import EvalError
from tunelab.eval.kinds.base import Measured, Metrics, ProgressFor, TaskKind, needs_dataset
from tunelab.eval.kinds.preference_plot import draw_margins
from tunelab.eval.results import TaskScore
from tunelab.model.load import ModelBundle

METRICS = ("accuracy", "accuracy_normalised", "margin", "reward_accuracy", "reward_margin")


class PreferenceTask(EvalTaskSpec):
    """A preference task: which pairs, and the beta of the implicit reward."""

    max_pairs: PositiveInt | None = Field(None, description="Preference: score at most this many pairs (the first "
                                                            "ones of the dataset; default: all).")
    beta: PositiveFloat | None = Field(None, description="Preference: beta of the implicit reward beta * (log p - "
                                                         "log p_reference) of a model with adapters (default: the "
                                                         "config's pref_beta).")


def read_pairs(config: RunConfig, task: PreferenceTask) -> list[Pair]:
    """The task's pairs, checked before any model loads: a ranking dataset with at least one pair."""
    from tunelab.data.gather import load_records

    entry = lookup([task.dataset], config.data.dataset_dir)[0]
    if not entry.entry.ranking:
        raise EvalError(f"task {task.name}: dataset {task.dataset} is not a ranking dataset; a preference task "
                        "needs a chosen and a rejected answer per row: set \"ranking\": true and map the chosen and "
                        "rejected columns in its dataset_info.json entry")
    records = load_records(config.data.model_copy(update={"dataset": task.dataset}), "dpo")[0]
    pairs = [record for record in records if isinstance(record, Pair)][: task.max_pairs or None]
    if not pairs:
        raise EvalError(f"task {task.name}: dataset {task.dataset} has no pairs")
    return pairs


def measure_preference(config: RunConfig, task: PreferenceTask) -> Measured:
    """Read the pairs now; score a model on them later."""
    pairs = read_pairs(config, task)

    def run(bundle: ModelBundle, config: RunConfig, progress: ProgressFor) -> TaskScore:
        """A reward model's scores of both answers, else their log-probabilities (and, with adapters, those of
        the base weights)."""
        from tunelab.eval.preference import (
            adapters_disabled, encode_pairs, has_adapters, pair_logps, pair_scores, preference_metrics,
            preference_rows, reward_scorer,
        )
        from tunelab.infer.score import head_folder
        from tunelab.model.value_head import has_value_head

        encoded = encode_pairs(pairs, bundle.tokenizer, config.data)
        batch, pad = config.eval.per_device_eval_batch_size, bundle.tokenizer.pad_token_id or 0
        folder = head_folder(bundle.source.path, config.model.adapter_name_or_path)
        reference, details = None, {"truncated": encoded.truncated}
        if has_value_head(folder):
            scorer = reward_scorer(bundle.model, bundle.tokenizer, folder)
            scored = pair_scores(scorer, encoded.rows, batch, pad, progress("pairs"))
            rows, empty = preference_rows(encoded.ids, scored, None, 0.0, measure="score")
            details["scored_by"] = f"the reward model's value head ({folder})"
        else:
            scored = pair_logps(bundle.model, encoded.rows, batch, pad, progress("pairs"))
            if has_adapters(bundle.model):
                with adapters_disabled(bundle.model):
                    reference = pair_logps(bundle.model, encoded.rows, batch, pad, progress("pairs (reference)"))
                details.update(beta=task.beta or config.pref.pref_beta,
                               reference="the base weights (adapters disabled)")
            rows, empty = preference_rows(encoded.ids, scored, reference, task.beta or config.pref.pref_beta)
            details["scored_by"] = "sequence log-probability of the answer tokens"
        found = preference_metrics(rows)
        metrics = {name: found[name] for name in KIND.task_metrics(task) if name in found}
        score = TaskScore(task.name, task.type, metrics, len(rows), rows=rows, details=details)
        score.unextracted = empty  # an answer cut to no tokens by cutoff_len: the pair counts as wrong
        return score
    return run


KIND = TaskKind(
    "preference", "held-out pairs: the share where the model prefers the chosen answer (log-probability, implicit "
    "reward)", PreferenceTask, Metrics(METRICS), METRICS, measure=measure_preference, needs=needs_dataset,
    plot=draw_margins,
    scales={"margin": "nats: mean log p(chosen) - log p(rejected); a reward model's: score units",
            "reward_margin": "beta x nats: mean implicit reward of chosen - rejected"})
