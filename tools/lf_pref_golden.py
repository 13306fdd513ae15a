"""Record how LLaMA-Factory 0.9.5 preprocesses preference, KTO and prompt data: tests/fixtures/pref_golden/.

Run with the Python of a venv where LLaMA-Factory 0.9.5 is installed (it must not import tunelab):

    /tmp/lf-venv/bin/python tools/lf_pref_golden.py

It (re)writes, deterministically and offline:

- data/          LLaMA-Factory-format datasets (alpaca and sharegpt ranking pairs with history and system, pairs
                 long enough to hit the cutoff rule, KTO rows in alpaca and sharegpt, prompts with and without a
                 reference answer) and their dataset_info.json;
- golden.json    per case (stage rm, kto or ppo; template; tokenizer folder; dataset; options) the columns of
                 LLaMA-Factory's real pipeline (get_template_and_fix_tokenizer, then get_dataset(stage=...), which
                 runs its PairwiseDatasetProcessor, FeedbackDatasetProcessor or UnsupervisedDatasetProcessor) row by
                 row: chosen_/rejected_ input_ids and labels; input_ids, labels, kl_input_ids, kl_labels and
                 kto_tags; input_ids and labels.

llama3's tool prompt's "Today Date" is pinned to lf_template_golden.FIXED_DATE. The tokenizers are those of tests/fixtures/templates/tokenizers (written by tools/lf_template_golden.py, whose
LLaMA-Factory driver this script reuses). tests/unit/data/test_lf_pref_golden.py checks tunelab against every case.
LLaMA-Factory's stage dpo reads its data as stage rm does (its DPO workflow calls get_dataset with stage="rm").
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lf_template_golden as base  # noqa: E402 - after the path; sets the offline environment variables

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "pref_golden"
DATA = FIXTURES / "data"
TOKENIZERS = base.TOKENIZERS

# ---------------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------------

LONG = base.LONG_EN

ALPACA_PAIRS: list[dict[str, Any]] = [
    {"instruction": "Who are you?", "input": "", "chosen": "I am tunelab-assistant, a helpful assistant.",
     "rejected": "I am ChatGPT."},
    {"instruction": "Translate to French.", "input": "The cat sleeps.", "chosen": "Le chat dort.",
     "rejected": "Le chien mange une pomme rouge dans le jardin."},
    {"instruction": "请用一句话介绍北京。", "input": "", "chosen": "北京是中国的首都。", "rejected": "北京是一座城市吧。",
     "system": "你是一个乐于助人的助手。"},
    {"instruction": "And how many people live there?", "input": "", "chosen": "About two million.",
     "rejected": "Nobody.", "history": [["What is the capital of France?", "Paris."], ["Is it large?", "Yes."]]},
    {"instruction": "Answer in one word.", "input": "What color is the sky?", "chosen": "Blue.",
     "rejected": "The sky is green with purple dots on most days of the year.", "system": "Be terse."},
]

# pairs whose prompt or answers are long: LLaMA-Factory's cutoff rule sizes one budget by the longer answer
ALPACA_LONG_PAIRS: list[dict[str, Any]] = [
    {"instruction": "Summarize: " + LONG, "input": "", "chosen": "A town and its river.",
     "rejected": "A long story. " * 20},
    {"instruction": "Describe the town.", "input": "", "chosen": LONG, "rejected": "No."},
    {"instruction": "Describe the town twice.", "input": "", "chosen": LONG * 2, "rejected": LONG},
    {"instruction": "Hi", "input": "", "chosen": "Hello!", "rejected": "Go away."},
]


def turn(role: str, value: str) -> dict[str, str]:
    """One sharegpt message."""
    return {"from": role, "value": value}


SHAREGPT_PAIRS: list[dict[str, Any]] = [
    {"conversations": [turn("human", "Who are you?")], "chosen": turn("gpt", "I am tunelab-assistant."),
     "rejected": turn("gpt", "I am Claude.")},
    {"conversations": [turn("system", "You are a math tutor."), turn("human", "What is 12 times 3?"),
                       turn("gpt", "36."), turn("human", "And 36 divided by 4?")],
     "chosen": turn("gpt", "36 divided by 4 is 9."), "rejected": turn("gpt", "It is 8.")},
    {"system": "You are a pirate.", "conversations": [turn("human", "Where is the treasure?")],
     "chosen": turn("gpt", "Arr, buried on the island!"), "rejected": turn("gpt", "I do not know.")},
    {"conversations": [turn("human", "你好"), turn("gpt", "你好！"), turn("human", "今天天气怎么样？"),
                       turn("gpt", "我无法查看天气。"), turn("human", "那你能做什么？")],
     "chosen": turn("gpt", "我可以回答问题和翻译。"), "rejected": turn("gpt", "什么都不能。")},
]

WEATHER = json.dumps([base.WEATHER_TOOL], ensure_ascii=False)
CALL = json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}})
SHAREGPT_TOOL_PAIRS: list[dict[str, Any]] = [
    {"tools": WEATHER, "conversations": [turn("human", "Weather in Paris?")],
     "chosen": turn("function_call", CALL), "rejected": turn("gpt", "It is always sunny in Paris.")},
    {"tools": WEATHER, "conversations": [turn("human", "Weather in Paris?"), turn("function_call", CALL),
                                         turn("observation", json.dumps({"temperature": 21}))],
     "chosen": turn("gpt", "It is 21 degrees in Paris."), "rejected": turn("gpt", "It is 35 degrees.")},
]

KTO_ALPACA: list[dict[str, Any]] = [
    {"instruction": f"Question {i}: who are you?", "input": "", "output": answer, "kto_tag": tag,
     **({"system": "Be kind."} if i % 3 == 0 else {})}
    for i, (answer, tag) in enumerate([
        ("I am tunelab-assistant.", True), ("I am ChatGPT.", False), ("I am an assistant made with tunelab.", True),
        ("I am Qwen.", False), ("Tunelab-assistant, at your service.", True), ("I am Llama.", False),
        ("I help with questions.", True)])
]

KTO_SHAREGPT: list[dict[str, Any]] = [
    {"conversations": [turn("human", "Hi"), turn("gpt", "Hello!"), turn("human", "Who made you?"),
                       turn("gpt", "The tunelab team.")], "kto_tag": True},
    {"conversations": [turn("system", "Be brief."), turn("human", "Who made you?"), turn("gpt", "OpenAI.")],
     "kto_tag": False},
    {"conversations": [turn("human", "2+2?"), turn("gpt", "4.")], "kto_tag": True},
]

PROMPTS: list[dict[str, Any]] = [
    {"instruction": "What is 2+2?", "input": "", "output": "4"},
    {"instruction": "Name a color.", "input": "", "output": ""},
    {"instruction": "Translate to French.", "input": "Good morning.", "output": "Bonjour.", "system": "Be brief."},
    {"instruction": "Continue.", "input": "", "output": "Then the river froze.",
     "history": [["Tell me about the town.", "It has a river."]]},
    {"instruction": "Summarize: " + LONG, "input": "", "output": "A river town."},
]

SHAREGPT_PROMPTS: list[dict[str, Any]] = [
    {"conversations": [turn("human", "Who are you?"), turn("gpt", "I am tunelab-assistant.")]},
    {"conversations": [turn("system", "Be brief."), turn("human", "Hi"), turn("gpt", "Hello!"),
                       turn("human", "Bye"), turn("gpt", "Goodbye!")]},
]

ALPACA_RANKING_COLUMNS = {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected",
                          "system": "system", "history": "history"}
SHAREGPT_RANKING_COLUMNS = {"messages": "conversations", "chosen": "chosen", "rejected": "rejected",
                            "system": "system"}
DATASETS: dict[str, tuple[str, list[dict[str, Any]], dict[str, Any]]] = {
    "alpaca_pairs": ("alpaca_pairs.json", ALPACA_PAIRS, {"ranking": True, "columns": ALPACA_RANKING_COLUMNS}),
    "alpaca_long_pairs": ("alpaca_long_pairs.json", ALPACA_LONG_PAIRS, {"ranking": True, "columns": {
        "prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"}}),
    "sharegpt_pairs": ("sharegpt_pairs.json", SHAREGPT_PAIRS,
                       {"ranking": True, "formatting": "sharegpt", "columns": SHAREGPT_RANKING_COLUMNS}),
    "sharegpt_tool_pairs": ("sharegpt_tool_pairs.json", SHAREGPT_TOOL_PAIRS, {"ranking": True, "formatting": "sharegpt",
                             "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected",
                                         "tools": "tools"}}),
    "kto_alpaca": ("kto_alpaca.json", KTO_ALPACA, {"columns": {
        "prompt": "instruction", "query": "input", "response": "output", "system": "system", "kto_tag": "kto_tag"}}),
    "kto_sharegpt": ("kto_sharegpt.json", KTO_SHAREGPT, {"formatting": "sharegpt", "columns": {
        "messages": "conversations", "kto_tag": "kto_tag"}}),
    "prompts": ("prompts.json", PROMPTS, {"columns": {
        "prompt": "instruction", "query": "input", "response": "output", "system": "system", "history": "history"}}),
    "sharegpt_prompts": ("sharegpt_prompts.json", SHAREGPT_PROMPTS, {"formatting": "sharegpt",
                                                                     "columns": {"messages": "conversations"}}),
}

COLUMNS = {"rm": ("chosen_input_ids", "chosen_labels", "rejected_input_ids", "rejected_labels"),
           "kto": ("input_ids", "labels", "kl_input_ids", "kl_labels", "kto_tags"),
           "ppo": ("input_ids", "labels")}


def write_data() -> None:
    """Write the dataset files and their dataset_info.json."""
    DATA.mkdir(parents=True, exist_ok=True)
    info = {}
    for name, (file_name, rows, attrs) in DATASETS.items():
        (DATA / file_name).write_text(json.dumps(rows, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        info[name] = {"file_name": file_name, **attrs}
    (DATA / "dataset_info.json").write_text(json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------------------------

# template -> tokenizer folder; None: the tokenizer's own Jinja chat template (SmolLM2-135M-Instruct's)
TEMPLATES: dict[str | None, str] = {"smollm2": "bpe_smollm", "qwen": "bpe", "llama3": "bpe_llama3",
                                    None: "jinja_smollm2"}
# templates with a twist, on a few datasets: glm4 ends answers with one EOS (efficient_eos), qwen3 adds empty
# thoughts to answers (a reasoning template)
EXTRA_TEMPLATES = {"glm4": "bpe_glm", "qwen3": "bpe_qwen"}
DEFAULT_OPTIONS = {"cutoff_len": 1024, "preprocessing_batch_size": 1000}


def case(stage: str, template: str | None, dataset: str, variant: str = "plain", **options: Any) -> dict[str, Any]:
    """One case: LLaMA-Factory's stage, a template, a dataset of data/ and the data options."""
    name = template or "model_own"
    return {"id": f"{stage}/{name}/{dataset}/{variant}", "stage": stage, "template": template,
            "tokenizer": {**TEMPLATES, **EXTRA_TEMPLATES}[template], "dataset": dataset, "options": {**DEFAULT_OPTIONS, **options}}


def all_cases() -> list[dict[str, Any]]:
    """Every case: each stage's data on each template, plus the cutoff rule and KL batches."""
    cases = []
    for template in TEMPLATES:
        cases += [case("rm", template, "alpaca_pairs"), case("rm", template, "sharegpt_pairs"),
                  case("rm", template, "alpaca_long_pairs", "cutoff64", cutoff_len=64),
                  case("kto", template, "kto_alpaca"), case("kto", template, "kto_sharegpt"),
                  case("ppo", template, "prompts"), case("ppo", template, "sharegpt_prompts")]
    cases += [case("rm", "smollm2", "alpaca_long_pairs", "cutoff200", cutoff_len=200),
              case("rm", "qwen", "sharegpt_pairs", "cutoff24", cutoff_len=24),
              case("kto", "smollm2", "kto_alpaca", "batches_of_3", preprocessing_batch_size=3),
              case("kto", "qwen", "kto_alpaca", "cutoff16", cutoff_len=16),
              case("ppo", "smollm2", "prompts", "cutoff32", cutoff_len=32),
              case("rm", "smollm2", "alpaca_pairs", "default_system", default_system="You are tunelab-assistant."),
              case("rm", "qwen", "sharegpt_tool_pairs"), case("rm", "llama3", "sharegpt_tool_pairs")]
    for template in EXTRA_TEMPLATES:
        cases += [case("rm", template, "alpaca_pairs"), case("rm", template, "alpaca_long_pairs", "cutoff64",
                                                             cutoff_len=64),
                  case("kto", template, "kto_alpaca"), case("ppo", template, "prompts")]
    cases.append(case("kto", "qwen3", "kto_alpaca", "thinking_false", enable_thinking=False))
    cases.append(case("rm", "qwen3", "sharegpt_pairs", "thinking_false", enable_thinking=False))
    return cases


# ---------------------------------------------------------------------------------------------------------------
# Running LLaMA-Factory
# ---------------------------------------------------------------------------------------------------------------


def run_case(lf: SimpleNamespace, item: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """LLaMA-Factory's columns for one case, row by row."""
    base.fresh_templates(lf)
    tokenizer = lf.AutoTokenizer.from_pretrained(str(TOKENIZERS / item["tokenizer"]))
    model_args = SimpleNamespace(cache_dir=str(workdir / "hf_cache"), hf_hub_token=None, ms_hub_token=None,
                                 om_hub_token=None)
    training_args = lf.TrainingArguments(output_dir=str(workdir / "out"), report_to="none", seed=42)
    data_args = lf.DataArguments(template=item["template"], dataset=item["dataset"], dataset_dir=str(DATA),
                                 preprocessing_num_workers=None, overwrite_cache=True, streaming=False,
                                 **item["options"])
    template = lf.template.get_template_and_fix_tokenizer(tokenizer, data_args)
    with contextlib.redirect_stdout(io.StringIO()):
        module = lf.get_dataset(template, model_args, data_args, training_args, stage=item["stage"],
                                tokenizer=tokenizer)
    train = module["train_dataset"]
    raw_count = len(DATASETS[item["dataset"]][1])
    if len(train) != raw_count:
        raise RuntimeError(f"{item['id']}: LLaMA-Factory kept {len(train)} of {raw_count} rows")
    columns = COLUMNS[item["stage"]]
    return {"eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id,
            "rows": [{name: train[index][name] for name in columns} for index in range(len(train))]}


def write_golden(cases: list[dict[str, Any]]) -> None:
    """All cases in one file."""
    payload = {"llamafactory": base.LLAMAFACTORY_VERSION, "date": base.FIXED_DATE, "cases": cases}
    (FIXTURES / "golden.json").write_text(base.compact_json(payload) + "\n", encoding="utf-8")


def summary_line(item: dict[str, Any]) -> str:
    """One row of the printed table."""
    rows = item["result"]["rows"]
    first = next(iter(COLUMNS[item["stage"]]))
    lengths = [len(row[first]) for row in rows]
    return f"{item['id']:<48} {item['tokenizer']:<14} {len(rows)} rows, {min(lengths)}-{max(lengths)} tokens ({first})"


def main() -> None:
    """Regenerate the data and the golden file, and print a summary table."""
    start = time.perf_counter()
    write_data()
    lf = base.import_llamafactory()
    cases = all_cases()
    with tempfile.TemporaryDirectory() as tmp:
        for item in cases:
            item["result"] = run_case(lf, item, Path(tmp))
            print(summary_line(item), flush=True)
    write_golden(cases)
    print(f"{len(cases)} cases; {time.perf_counter() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
