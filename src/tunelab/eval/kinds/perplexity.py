"""`perplexity`: perplexity of the model on a text dataset (no generation)."""

from __future__ import annotations

from tunelab.config.eval_tasks import EvalTaskSpec
from tunelab.config.schema import RunConfig
from tunelab.eval.kinds.base import Measured, Metrics, ProgressFor, TaskKind
from tunelab.eval.results import TaskScore
from tunelab.model.load import ModelBundle


def measure_perplexity(config: RunConfig, task: EvalTaskSpec) -> Measured:
    """Read the task's texts now; measure a model on them later."""
    from tunelab.eval.perplexity import dataset_texts

    texts = dataset_texts(task.dataset, config.data.dataset_dir, config.data.max_samples)

    def run(bundle: ModelBundle, config: RunConfig, progress: ProgressFor) -> TaskScore:
        """Perplexity of the model on the texts."""
        from tunelab.eval.perplexity import perplexity

        result = perplexity(bundle, texts, config.data.cutoff_len, config.eval.per_device_eval_batch_size,
                            progress("windows"))
        return TaskScore(task.name, task.type, {"perplexity": result.perplexity}, len(texts),
                         rows=result.rows, details={"tokens": result.tokens})
    return run


KIND = TaskKind(
    "perplexity", "perplexity of the model on a text dataset", EvalTaskSpec, Metrics(("perplexity",)),
    ("perplexity",), measure=measure_perplexity)
