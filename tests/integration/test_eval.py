"""`tunelab eval --compare` on the real SmolLM2: the example config, base vs the trained adapter, one report."""

from __future__ import annotations

import json

from .clirun import tunelab

EXAMPLE = "examples/eval_compare.yaml"


def test_eval_compare_example_end_to_end(trained_run, tmp_path):
    run_dir, _ = trained_run
    out = tmp_path / "eval"
    args = ("eval", EXAMPLE, "--compare", f"adapter_name_or_path={run_dir}", f"output_dir={out}", "max_samples=4",
            "max_new_tokens=12")
    result = tunelab(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads((out / "eval_results.json").read_text(encoding="utf-8"))
    assert summary["models"] == ["base", "fine-tuned"]
    base, tuned = summary["results"]["base"], summary["results"]["fine-tuned"]
    assert set(base) == {"identity", "sentiment", "quiz", "mmlu-mini", "identity-ppl"}
    assert base["identity"]["scored"] == 4 and base["mmlu-mini"]["scored"] == 10
    assert set(base["identity"]["metrics"]) == {"bleu-4", "rouge-1", "rouge-2", "rouge-l"}
    # eight steps on the identity answers already make them far more likely
    assert tuned["identity-ppl"]["metrics"]["perplexity"] < base["identity-ppl"]["metrics"]["perplexity"]
    assert (out / "eval_results.png").stat().st_size > 5000
    table = (out / "eval_results.md").read_text(encoding="utf-8")
    assert "| base |" in table and "| fine-tuned |" in table
    rows = (out / "rows" / "identity.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(rows) == 4 and set(json.loads(rows[0])["models"]) == {"base", "fine-tuned"}
    assert "tunelab eval" in result.stderr  # the table on the console
    again = tunelab(*args)  # nothing changed: every generated task reuses its predictions
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("reusing") == 6
    rerun = json.loads((out / "eval_results.json").read_text(encoding="utf-8"))["results"]
    assert {m: {t: s["metrics"] for t, s in r.items()} for m, r in rerun.items()} == \
        {m: {t: s["metrics"] for t, s in r.items()} for m, r in summary["results"].items()}


def test_eval_bad_task_stops_before_loading(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_name_or_path: smollm2-135m-instruct\ndataset_dir: examples/data\noutput_dir: o\n"
                   "eval_tasks:\n  - {name: q, type: choice, dataset: identity}\n", encoding="utf-8")
    result = tunelab("eval", str(bad))
    assert result.returncode == 1
    assert "task q: row identity:1: the reference answer 'I am the tunelab assistant" in result.stderr
    assert "Loading weights" not in result.stderr and "Traceback" not in result.stderr
