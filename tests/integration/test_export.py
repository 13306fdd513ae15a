"""`tunelab export` on the real SmolLM2 with the quickstart's trained identity adapter: the merged model answers
like base + adapter (float32, greedy, identity prompts and 50 varied ones), and loads with plain transformers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .clirun import QUICKSTART, REPO, tunelab

PROMPTS = REPO / "tests" / "data" / "export_prompts.txt"
QUICKSTART_PATH = str(REPO / QUICKSTART)
NEW_TOKENS = 16


@pytest.fixture(scope="module")
def exported(trained_run: tuple[Path, subprocess.CompletedProcess],
             tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """The trained run exported once, in float32: (run folder, export folder, the finished CLI process)."""
    run, _ = trained_run
    out = tmp_path_factory.mktemp("export") / "identity"
    result = tunelab("export", QUICKSTART, f"output_dir={run}", f"export_dir={out}", "export_dtype=float32")
    assert result.returncode == 0, result.stderr[-3000:]
    return run, out, result


def identity_prompts() -> list[str]:
    rows = json.loads((REPO / "examples" / "data" / "identity.json").read_text(encoding="utf-8"))
    return list(dict.fromkeys(row["instruction"] for row in rows))


def greedy_and_logits(model: object, tokenizer: object, prompts: list[str]) -> tuple[list[list[int]], list[object]]:
    """Greedy answers with transformers' own generate (left-padded batch), and each answer's logits at every step
    until it stopped (the stop token's step included), taken from generate itself: no second forward pass."""
    import torch

    texts = [tokenizer.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                           add_generation_prompt=True) for p in prompts]
    tokenizer.padding_side = "left"
    batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=NEW_TOKENS, do_sample=False, output_logits=True,
                             return_dict_in_generate=True, pad_token_id=tokenizer.pad_token_id)
    width = batch["input_ids"].shape[1]
    answers = [[t for t in row[width:].tolist() if t != tokenizer.pad_token_id] for row in out.sequences]
    steps = torch.stack(out.logits, dim=1).float()  # rows x steps x vocab
    return answers, [steps[i, : min(len(a) + 1, steps.shape[1])] for i, a in enumerate(answers)]


def test_merged_model_answers_like_base_plus_adapter(exported: tuple[Path, Path, subprocess.CompletedProcess],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    from tunelab.config.load import load_config
    from tunelab.infer.load import load_for_inference

    run, out, result = exported
    assert f"exported hf (float32) to {out}" in result.stdout
    assert "check merged model: greedy answers equal on 5/5 prompts" in result.stdout
    prompts = identity_prompts() + PROMPTS.read_text(encoding="utf-8").splitlines()
    assert len(prompts) >= 80
    config = load_config(QUICKSTART_PATH, [f"output_dir={run}"], purpose="infer")
    bundle = load_for_inference(config)  # base + the run's adapter, unmerged, float32: what `tunelab chat` runs
    reference, reference_logits = greedy_and_logits(bundle.model, bundle.tokenizer, prompts)
    with bundle.model.disable_adapter():
        base, _ = greedy_and_logits(bundle.model, bundle.tokenizer, prompts[:4])
    assert base != reference[:4]  # the adapter changes the answers, so equality below means something
    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    answers, merged_logits = greedy_and_logits(merged, bundle.tokenizer, prompts)
    different = [(p, bundle.tokenizer.decode(r), bundle.tokenizer.decode(a))
                 for p, r, a in zip(prompts, reference, answers) if r != a]
    assert not different, different[:3]
    diff = max(float((a - b).abs().max()) for a, b in zip(reference_logits, merged_logits))
    with capsys.disabled():
        print(f"\nexport: {len(prompts)} prompts, greedy answers equal, max |logit difference| over the answers "
              f"{diff:.3g} (float32)")
    assert diff < 1e-3


def test_merged_folder_loads_without_tunelab(exported: tuple[Path, Path, subprocess.CompletedProcess]) -> None:
    from tunelab.config.load import load_config
    from tunelab.infer.load import load_for_inference

    run, out, _ = exported
    script = (
        "import sys, json\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n"
        f"tokenizer = AutoTokenizer.from_pretrained({str(out)!r})\n"
        f"model = AutoModelForCausalLM.from_pretrained({str(out)!r})\n"
        "messages = [{'role': 'system', 'content': 'Be brief.'}, {'role': 'user', 'content': 'Who are you?'}]\n"
        "text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)\n"
        "ids = tokenizer(text, return_tensors='pt', add_special_tokens=False)\n"
        "answer = model.generate(**ids, max_new_tokens=16, do_sample=False)\n"
        "print(json.dumps({'text': text, 'tunelab': any(m.startswith('tunelab') for m in sys.modules),\n"
        "                  'eos': model.generation_config.eos_token_id, 'tokens': answer.shape[1]}))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          cwd=out.parent)
    assert done.returncode == 0, done.stderr[-3000:]
    shown = json.loads(done.stdout.strip().splitlines()[-1])
    assert shown["tunelab"] is False
    config = load_config(QUICKSTART_PATH, [f"output_dir={run}"], purpose="infer")
    tokenizer = load_for_inference(config).tokenizer
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Who are you?"}]
    assert shown["text"] == tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    eos = shown["eos"] if isinstance(shown["eos"], list) else [shown["eos"]]
    assert tokenizer.convert_tokens_to_ids("<|im_end|>") in eos
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "- Datasets: identity" in card and "final_train_loss" in card
