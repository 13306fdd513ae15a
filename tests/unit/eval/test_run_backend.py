"""`tunelab eval` on infer_backend: vllm: generation tasks run there; a task scoring the model's probabilities is
an error naming it before any model loads."""

from __future__ import annotations

import pytest

from tunelab.config.eval_tasks import EvalTaskSpec
from tunelab.config.load import build
from tunelab.eval.errors import EvalError
from tunelab.eval.run import PreparedTask, check_backend


def test_measured_tasks_need_huggingface() -> None:
    generated = PreparedTask(spec=EvalTaskSpec(name="qa", type="generation"))
    measured = PreparedTask(spec=EvalTaskSpec(name="ppl", type="perplexity"), measure=lambda *a: None)
    vllm = build({"model_name_or_path": "tiny", "infer_backend": "vllm"}, purpose="infer")
    check_backend(vllm, [generated])
    with pytest.raises(EvalError, match="eval_tasks ppl: these tasks score the model's probabilities"):
        check_backend(vllm, [generated, measured])
    check_backend(build({"model_name_or_path": "tiny"}, purpose="infer"), [generated, measured])
