"""Record how LLaMA-Factory 0.9.5 tokenizes SFT data with each chat template: tests/fixtures/templates/.

Run with the Python of a venv where LLaMA-Factory 0.9.5 is installed (it must not import tunelab):

    /path/to/lf-venv/bin/python tools/lf_template_golden.py

It (re)writes, deterministically and offline:

- tokenizers/<name>/   small trained tokenizers (a byte-level BPE and a SentencePiece-style Metaspace BPE),
                        one folder per special-token configuration, two with a real Jinja chat template;
- data/                 LLaMA-Factory-format datasets (alpaca, sharegpt, sharegpt with tools, with
                        <think> reasoning, and one with malformed rows) and their dataset_info.json;
- golden/<key>.json     for every case (template, tokenizer folder, dataset, options) the input_ids and
                        labels of LLaMA-Factory's real SFT pipeline (get_template_and_fix_tokenizer, then
                        get_dataset(stage="sft")), or the error it raised, plus the rows it dropped.

tests/unit/data/test_lf_golden.py checks tunelab against every case. The llama3 tool prompt's
"Today Date" is pinned to FIXED_DATE.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("LLAMAFACTORY_VERBOSITY", "ERROR")

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "templates"
TOKENIZERS = FIXTURES / "tokenizers"
DATA = FIXTURES / "data"
GOLDEN = FIXTURES / "golden"
FIXED_DATE = "2024-07-23"
LLAMAFACTORY_VERSION = "0.9.5"

# ---------------------------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------------------------

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Get the current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "The city name."},
            "unit": {"type": "string", "description": "Temperature unit.", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
    },
}
SEARCH_TOOL = {
    "name": "search",
    "description": "Search the web for a query.",
    "parameters": {
        "type": "object",
        "properties": {"query": {"type": "string", "description": "What to look for."}},
        "required": ["query"],
    },
}

LONG_EN = (
    "The river runs through the old town, past the market, the school and the library. In spring the water "
    "rises and the boats carry fruit, bread and fish to the market. In summer children swim near the bridge "
    "while their parents sit in the shade and talk about the weather, the harvest and the news from the city. "
    "In autumn the leaves turn red and gold, and the town holds a festival with music, dancing and long tables "
    "of food. In winter the river freezes, the boats rest on the bank, and the people skate on the ice until "
    "the sun goes down. "
)
LONG_ZH = (
    "长江是中国最长的河流，全长约六千三百公里，流经青海、西藏、四川、云南、重庆、湖北、湖南、江西、安徽、江苏和上海。"
    "长江流域气候温和，雨量充沛，是中国重要的农业区和经济区。沿岸有许多著名的城市，例如重庆、武汉、南京和上海。"
    "三峡工程是世界上最大的水利工程之一，可以防洪、发电和改善航运。"
)

ALPACA_ROWS: list[dict[str, Any]] = [
    {"instruction": "What is the capital of France?", "input": "", "output": "Paris is the capital of France."},
    {"instruction": "Translate to French.", "input": "The cat sleeps on the bed.",
     "output": "Le chat dort sur le lit."},
    {"instruction": "请用一句话介绍北京。", "input": "", "output": "北京是中国的首都，有着三千多年的历史。"},
    {"instruction": "Answer in one word.", "input": "What color is the sky on a clear day?", "output": "Blue.",
     "system": "You are a terse assistant."},
    {"instruction": "And how many people live there?", "input": "", "output": "About two million people live in Paris.",
     "history": [["What is the capital of France?", "Paris."], ["Is it large?", "Yes, it is a large city."]]},
    {"instruction": "那上海呢？", "input": "", "output": "上海是中国最大的城市，也是重要的经济中心。",
     "system": "你是一个乐于助人的助手。", "history": [["中国的首都是哪里？", "北京。"]]},
    {"instruction": "Summarize the following text in one sentence.", "input": LONG_EN * 2,
     "output": "A town lives with its river through the four seasons."},
    {"instruction": "Write a long description of the seasons in a river town, then the same in Chinese.",
     "input": "", "output": LONG_EN * 7 + "\n\n" + LONG_ZH * 6},
    {"instruction": "List two fruits.", "input": "",
     "output": "  Here are two:\n\n- apple\n- banana  \n", "system": ""},
    {"instruction": "It's 3 o'clock. What time is it in 2 hours?", "input": "", "output": "It's 5 o'clock."},
]

SHAREGPT_ROWS: list[dict[str, Any]] = [
    {"conversations": [
        {"from": "human", "value": "Hello, who are you?"},
        {"from": "gpt", "value": "I am a helpful assistant. How can I help you today?"}]},
    {"conversations": [
        {"from": "system", "value": "You are a math tutor. Explain every step."},
        {"from": "human", "value": "What is 12 times 3?"},
        {"from": "gpt", "value": "12 times 3 is 36, because 12 + 12 + 12 = 36."},
        {"from": "human", "value": "And 36 divided by 4?"},
        {"from": "gpt", "value": "36 divided by 4 is 9."}]},
    {"conversations": [
        {"from": "human", "value": "你好，今天天气怎么样？"},
        {"from": "gpt", "value": "你好！我无法查看实时天气，但你可以看看天气预报。"},
        {"from": "human", "value": "那你能做什么？"},
        {"from": "gpt", "value": "我可以回答问题、翻译文本和写作。"},
        {"from": "human", "value": "请写一句诗。"},
        {"from": "gpt", "value": "床前明月光，疑是地上霜。"}]},
    {"system": "You are a pirate. Answer like a pirate.", "conversations": [
        {"from": "human", "value": "Where is the treasure?"},
        {"from": "gpt", "value": "Arr, the treasure be buried on the island, matey!"}]},
    {"conversations": [
        {"from": "human", "value": "Tell me about the river town."},
        {"from": "gpt", "value": LONG_EN},
        {"from": "human", "value": "What happens in winter?"},
        {"from": "gpt",
         "value": "In winter the river freezes and the people skate on the ice until the sun goes down."},
        {"from": "human", "value": "And in spring?"},
        {"from": "gpt", "value": "In spring the water rises and the boats carry fruit, bread and fish to the market."},
        {"from": "human", "value": "Thanks!"},
        {"from": "gpt", "value": "You are welcome."}]},
    {"conversations": [
        {"from": "human", "value": "Write a Python function that adds two numbers."},
        {"from": "gpt", "value": "```python\ndef add(a, b):\n    return a + b\n```\n\nCall it as `add(1, 2)`."}]},
    {"conversations": [
        {"from": "system", "value": ""},
        {"from": "human", "value": "Say hi in Chinese and English."},
        {"from": "gpt", "value": " Hi! 你好！ "}]},
    {"conversations": [
        {"from": "human", "value": "  Leading and trailing spaces.  "},
        {"from": "gpt", "value": "\nAn answer that starts with a newline.\n"}]},
]

TOOLS_ROWS: list[dict[str, Any]] = [
    {"tools": json.dumps([WEATHER_TOOL], ensure_ascii=False), "conversations": [
        {"from": "human", "value": "What is the weather in Paris?"},
        {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": "Paris"}})},
        {"from": "observation", "value": json.dumps({"temperature": 21, "condition": "sunny"})},
        {"from": "gpt", "value": "It is sunny in Paris, 21 degrees."}]},
    {"tools": json.dumps([WEATHER_TOOL, SEARCH_TOOL], ensure_ascii=False), "conversations": [
        {"from": "human", "value": "Weather in Paris and London, please."},
        {"from": "function_call", "value": json.dumps([
            {"name": "get_weather", "arguments": {"city": "Paris"}},
            {"name": "get_weather", "arguments": {"city": "London", "unit": "celsius"}}])},
        {"from": "observation", "value": json.dumps([{"temperature": 21}, {"temperature": 15}])},
        {"from": "gpt", "value": "Paris is 21 degrees and London is 15 degrees."}]},
    {"tools": "", "conversations": [
        {"from": "human", "value": "No tools here. What is 2 plus 2?"},
        {"from": "gpt", "value": "2 plus 2 is 4."}]},
    {"tools": json.dumps([SEARCH_TOOL], ensure_ascii=False), "conversations": [
        {"from": "human", "value": "Hello there, how are you?"},
        {"from": "gpt", "value": "I am fine, thanks. I do not need a tool for that."}]},
    {"tools": json.dumps([WEATHER_TOOL], ensure_ascii=False), "conversations": [
        {"from": "human", "value": "北京的天气怎么样？"},
        {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": "北京"}},
                                                      ensure_ascii=False)},
        {"from": "observation", "value": "晴，二十五度。"},
        {"from": "gpt", "value": "北京今天晴，二十五度。"},
        {"from": "human", "value": "上海呢？"},
        {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": "上海"}},
                                                      ensure_ascii=False)},
        {"from": "observation", "value": "小雨，二十度。"},
        {"from": "gpt", "value": "上海今天有小雨，二十度。"}]},
    {"system": "You are a weather bot.", "tools": json.dumps([WEATHER_TOOL], ensure_ascii=False),
     "conversations": [
        {"from": "human", "value": "Is it cold in Oslo?"},
        {"from": "function_call", "value": json.dumps({"name": "get_weather",
                                                       "arguments": {"city": "Oslo", "unit": "celsius"}})},
        {"from": "observation", "value": json.dumps({"temperature": -3})},
        {"from": "gpt", "value": "Yes, it is -3 degrees in Oslo."}]},
]

# Function calls with a thought before them, or wrapped in <tool_call> tags after some text.
TOOL_THOUGHT_ROWS: list[dict[str, Any]] = [
    {"tools": json.dumps([WEATHER_TOOL], ensure_ascii=False), "conversations": [
        {"from": "human", "value": "Should I take an umbrella in London?"},
        {"from": "function_call", "value": "<think>\nI need the weather in London first.\n</think>\n\n"
                                           + json.dumps({"name": "get_weather", "arguments": {"city": "London"}})},
        {"from": "observation", "value": json.dumps({"condition": "rain"})},
        {"from": "gpt", "value": "<think>\nIt rains.\n</think>\n\nYes, take an umbrella."}]},
    {"tools": json.dumps([SEARCH_TOOL], ensure_ascii=False), "conversations": [
        {"from": "human", "value": "Search for the capital of France."},
        {"from": "function_call", "value": "Let me search.\n<tool_call>\n"
                                           + json.dumps({"name": "search", "arguments": {"query": "capital of France"}})
                                           + "\n</tool_call>"},
        {"from": "observation", "value": "Paris is the capital of France."},
        {"from": "gpt", "value": "The capital of France is Paris."}]},
]

THINK_ROWS: list[dict[str, Any]] = [
    {"conversations": [
        {"from": "human", "value": "What is 2 + 2?"},
        {"from": "gpt", "value": "<think>\nThe user asks for 2 + 2. That is 4.\n</think>\n\nThe answer is 4."}]},
    {"conversations": [
        {"from": "human", "value": "What is 3 times 5?"},
        {"from": "gpt", "value": "<think>\n3 times 5 is 15.\n</think>\n\n15."},
        {"from": "human", "value": "And plus 1?"},
        {"from": "gpt", "value": "<think>\n15 plus 1 is 16.\n</think>\n\n16."}]},
    {"conversations": [
        {"from": "human", "value": "Say hello."},
        {"from": "gpt", "value": "Hello!"}]},
    {"conversations": [
        {"from": "human", "value": "What is the capital of France?"},
        {"from": "gpt", "value": "<think>\nEasy, it is Paris.\n</think>\n\nParis."},
        {"from": "human", "value": "Thanks."},
        {"from": "gpt", "value": "You are welcome."}]},
    {"conversations": [
        {"from": "human", "value": "一加一等于几？"},
        {"from": "gpt", "value": "<think>\n这是一个简单的加法问题，答案是二。\n</think>\n\n一加一等于二。"}]},
    {"conversations": [
        {"from": "system", "value": "You are a careful assistant. Think before answering."},
        {"from": "human", "value": "Is 7 a prime number?"},
        {"from": "gpt", "value": "<think>\n7 has no divisors other than 1 and 7.\n</think>\n\nYes, 7 is prime."}]},
    {"conversations": [
        {"from": "human", "value": "Quick: 10 minus 4?"},
        {"from": "gpt", "value": "<think>10 minus 4 is 6.</think>6."}]},
]

# Valid for LLaMA-Factory, but unusual: an empty answer, an input without instruction, an empty history answer.
ALPACA_EDGE_ROWS: list[dict[str, Any]] = [
    {"instruction": "Say nothing.", "input": "", "output": ""},
    {"instruction": "", "input": "Only an input, no instruction.", "output": "Then I answer the input."},
    {"instruction": "Go on.", "input": "", "output": "Going on.", "history": [["Start.", ""]]},
    {"instruction": "What is 2 + 2?", "input": "", "output": "4."},
]
# Rows of ALPACA_EDGE_ROWS that LLaMA-Factory trains on but tunelab (strict) rejects: an empty answer.
EMPTY_ANSWER_ROWS = [0, 2]

BAD_ROWS: list[dict[str, Any]] = [
    {"conversations": [
        {"from": "human", "value": "Hello, who are you?"},
        {"from": "gpt", "value": "I am a helpful assistant."}]},
    {"conversations": [
        {"from": "human", "value": "First question."},
        {"from": "human", "value": "Second question without an answer in between."},
        {"from": "gpt", "value": "One answer."}]},
    {"conversations": [
        {"from": "human", "value": "What is 2 + 2?"},
        {"from": "gpt", "value": "4."}]},
    {"conversations": [
        {"from": "human", "value": "A question."},
        {"from": "gpt", "value": "An answer."},
        {"from": "human", "value": "A last question that nobody answers."}]},
]

DATASETS: dict[str, tuple[str, list[dict[str, Any]], dict[str, Any]]] = {
    "alpaca_mix": ("alpaca_mix.json", ALPACA_ROWS, {
        "columns": {"prompt": "instruction", "query": "input", "response": "output", "system": "system",
                    "history": "history"}}),
    "alpaca_edge": ("alpaca_edge.json", ALPACA_EDGE_ROWS, {
        "columns": {"prompt": "instruction", "query": "input", "response": "output", "history": "history"}}),
    "sharegpt_chat": ("sharegpt_chat.json", SHAREGPT_ROWS, {
        "formatting": "sharegpt", "columns": {"messages": "conversations", "system": "system"}}),
    "sharegpt_tools": ("sharegpt_tools.json", TOOLS_ROWS, {
        "formatting": "sharegpt", "columns": {"messages": "conversations", "system": "system", "tools": "tools"}}),
    "sharegpt_tools_single": ("sharegpt_tools_single.json", TOOLS_ROWS[:1] + TOOLS_ROWS[2:], {
        "formatting": "sharegpt", "columns": {"messages": "conversations", "system": "system", "tools": "tools"}}),
    "sharegpt_tool_thought": ("sharegpt_tool_thought.json", TOOL_THOUGHT_ROWS, {
        "formatting": "sharegpt", "columns": {"messages": "conversations", "tools": "tools"}}),
    "sharegpt_think": ("sharegpt_think.json", THINK_ROWS, {
        "formatting": "sharegpt", "columns": {"messages": "conversations"}}),
    "sharegpt_bad": ("sharegpt_bad.json", BAD_ROWS, {
        "formatting": "sharegpt", "columns": {"messages": "conversations"}}),
}


def write_data() -> None:
    """Write the dataset files and their dataset_info.json."""
    DATA.mkdir(parents=True, exist_ok=True)
    info = {}
    for name, (file_name, rows, attrs) in DATASETS.items():
        (DATA / file_name).write_text(json.dumps(rows, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        info[name] = {"file_name": file_name, **attrs}
    (DATA / "dataset_info.json").write_text(json.dumps(info, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


# ---------------------------------------------------------------------------------------------------------------
# Tokenizers
# ---------------------------------------------------------------------------------------------------------------

# Chat markup of the 25 templates; all are special (atomic) tokens in the byte-level BPE.
MARKUP_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|im_sep|>",
    "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|eom_id|>",
    "<start_of_turn>", "<end_of_turn>",
    "[gMASK]", "sop", "<sop>", "<|user|>", "<|assistant|>", "<|system|>", "<|observation|>", "<|end|>",
    "<｜User｜>", "<｜Assistant｜>", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>",
    "[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]",
    "[/TOOL_RESULTS]", "<s>", "</s>",
]
# Added but not special, as in Qwen's tokenizers.
PLAIN_ADDED_TOKENS = ["<think>", "</think>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"]
# The SentencePiece-style tokenizer is Llama-2-like: [INST], <<SYS>> and zephyr's <|user|> stay plain text there.
SPM_MARKUP_TOKENS = [
    "<|im_start|>", "<|im_end|>", "<start_of_turn>", "<end_of_turn>",
    "[TOOL_CALLS]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]",
]

EXTRA_CORPUS = [
    "system user assistant model tool ipython observation Human Assistant System USER ASSISTANT",
    "### Instruction:\n### Response:\nBelow is an instruction that describes a task. "
    "Write a response that appropriately completes the request.",
    "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
    "detailed, and polite answers to the user's questions.",
    "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
    "You are Zephyr, a helpful assistant. You are a helpful AI assistant named SmolLM, trained by Hugging Face.",
    "You are an AI assistant whose name is InternLM (书生·浦语). It is designed to be helpful, honest, and harmless. "
    "developed by Shanghai AI Laboratory (上海人工智能实验室) chosen by the user such as English and 中文.",
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with "
    "function signatures within <tools></tools> XML tags. For each function call, return a json object with "
    "function name and arguments within XML tags. Action: Action Input: Observation:",
    "Cutting Knowledge Date: December 2023 Today Date: Environment: ipython You have access to the following "
    "functions. To call a function, please respond with JSON for a function call. Respond in the format "
    '{"name": function name, "parameters": dictionary of argument name and its value}. Do not use variables.',
    "你是一个名为 ChatGLM 的人工智能助手。你是基于智谱 AI 公司训练的语言模型 GLM-4 模型开发的，你的任务是针对用户的问题和要求提供适当的答复和支持。"
    "# 可用工具 在调用上述函数时，请使用 Json 格式表示调用的参数。",
    "The quick brown fox jumps over the lazy dog. 0 1 2 3 4 5 6 7 8 9 10 100 2024",
    "我们今天学习中文和英文。天气很好，我们去公园散步。这本书很有意思，我已经读了两遍。",
    '{"type": "object", "properties": {"name": "string", "description": "text"}, "required": [], "enum": []}',
]


def corpus() -> list[str]:
    """Training text: every string of the datasets plus template markup words, English and Chinese."""
    texts = list(EXTRA_CORPUS)

    def walk(value: Any) -> None:
        if isinstance(value, str):
            texts.append(value)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for _, rows, _ in DATASETS.values():
        walk(rows)
    return texts


def build_bpe() -> str:
    """A GPT-2/Qwen-style byte-level BPE with every chat-markup token added (serialized tokenizer.json)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1800, special_tokens=MARKUP_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(corpus(), trainer=trainer)
    tokenizer.add_tokens([AddedToken(token, special=False, normalized=False) for token in PLAIN_ADDED_TOKENS])
    return tokenizer.to_str()


def build_spm() -> str:
    """A Llama-2-like SentencePiece BPE: Metaspace (prepend_scheme first), byte fallback, <s> prepended."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    byte_tokens = [f"<0x{i:02X}>" for i in range(256)]
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    # Split on spaces while training so that merges stay inside words, as SentencePiece does.
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    trainer = trainers.BpeTrainer(vocab_size=1500, special_tokens=["<unk>", "<s>", "</s>", *byte_tokens],
                                  show_progress=False, limit_alphabet=1000)
    tokenizer.train_from_iterator(corpus(), trainer=trainer)
    data = json.loads(tokenizer.to_str())
    data["added_tokens"] = [token for token in data["added_tokens"] if token["content"] not in byte_tokens]
    data["model"]["byte_fallback"] = True
    tokenizer = Tokenizer.from_str(json.dumps(data, ensure_ascii=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tokenizer.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(),
                                           decoders.Strip(" ", 1, 0)])
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tokenizer.token_to_id("<s>"))])
    tokenizer.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in SPM_MARKUP_TOKENS])
    tokenizer.add_tokens([AddedToken(token, special=False, normalized=False) for token in PLAIN_ADDED_TOKENS])
    return tokenizer.to_str()


# Qwen3's chat template (its structure and text; long lines kept as they are in the original).
QWEN3_STYLE_TEMPLATE = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\\n\\n' }}
    {%- endif %}
    {{- "# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and message.content is string and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.content is string %}
        {%- set content = message.content %}
    {%- else %}
        {%- set content = '' %}
    {%- endif %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in content %}
                {%- set reasoning_content = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}
                {%- set content = content.split('</think>')[-1].lstrip('\\n') %}
            {%- endif %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index %}
            {%- if loop.last or (not loop.last and reasoning_content) %}
                {{- '<|im_start|>' + message.role + '\\n<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}
            {%- else %}
                {{- '<|im_start|>' + message.role + '\\n' + content }}
            {%- endif %}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\\n' + content }}
        {%- endif %}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and content) or (not loop.first) %}
                    {{- '\\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\\n{"name": "' }}
                {{- tool_call.name }}
                {{- '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\\n\\n</think>\\n\\n' }}
    {%- endif %}
{%- endif %}"""

# SmolLM2-135M-Instruct's own chat template, verbatim.
SMOLLM2_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\n"
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# folder -> (model, special tokens, chat template); the special-token settings mimic the real model families.
TOKENIZER_FOLDERS: dict[str, tuple[str, dict[str, str], str | None]] = {
    "bpe": ("bpe", {"eos_token": "<|endoftext|>"}, None),
    "bpe_qwen": ("bpe", {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}, None),
    "bpe_llama3": ("bpe", {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"}, None),
    "bpe_glm": ("bpe", {"eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"}, None),
    "bpe_deepseek3": ("bpe", {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>"}, None),
    "bpe_smollm": ("bpe", {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "pad_token": "<|im_end|>",
                           "unk_token": "<|endoftext|>"}, None),
    "spm": ("spm", {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}, None),
    "jinja_smollm2": ("bpe", {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>", "pad_token": "<|im_end|>",
                              "unk_token": "<|endoftext|>"}, SMOLLM2_TEMPLATE),
    "jinja_qwen3": ("bpe", {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"}, QWEN3_STYLE_TEMPLATE),
}


def write_tokenizers() -> None:
    """Train both tokenizer models once and write one folder per special-token configuration."""
    models = {"bpe": build_bpe(), "spm": build_spm()}
    if TOKENIZERS.exists():
        shutil.rmtree(TOKENIZERS)
    for folder, (model, specials, chat_template) in TOKENIZER_FOLDERS.items():
        path = TOKENIZERS / folder
        path.mkdir(parents=True)
        (path / "tokenizer.json").write_text(models[model], encoding="utf-8")
        config: dict[str, Any] = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 4096,
                                  "clean_up_tokenization_spaces": False, **specials}
        if chat_template is not None:
            config["chat_template"] = chat_template
        (path / "tokenizer_config.json").write_text(json.dumps(config, ensure_ascii=False, indent=2) + "\n",
                                                    encoding="utf-8")


# ---------------------------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------------------------

TEMPLATE_TOKENIZER: dict[str, str] = {
    "default": "spm", "empty": "bpe", "fewshot": "spm", "alpaca": "spm", "vicuna": "spm", "zephyr": "spm",
    "chatml": "bpe", "qwen": "bpe", "qwen3": "bpe_qwen", "qwen3_nothink": "bpe_qwen", "llama2": "spm",
    "llama3": "bpe_llama3", "mistral": "spm", "gemma": "spm", "gemma3": "spm", "glm4": "bpe_glm",
    "chatglm3": "bpe_glm", "yi": "spm", "deepseek": "spm", "deepseek3": "bpe_deepseek3", "smollm": "bpe_smollm",
    "smollm2": "bpe_smollm", "phi": "bpe", "phi4": "bpe", "intern2": "spm",
}
JINJA_TOKENIZERS = ("jinja_smollm2", "jinja_qwen3")

DEFAULT_OPTIONS = {"cutoff_len": 1024, "train_on_prompt": False, "mask_history": False, "default_system": None,
                   "tool_format": None, "enable_thinking": True, "preserve_thinking": False}

TRAIN_ON_PROMPT = ("default", "alpaca", "vicuna", "chatml", "qwen", "llama2", "llama3", "mistral", "gemma", "phi4",
                   "deepseek3", "smollm2", "fewshot", "glm4", "chatglm3", "jinja_smollm2")
MASK_HISTORY = ("chatml", "llama2", "llama3", "mistral", "gemma3", "glm4", "chatglm3", "yi", "intern2", "zephyr",
                "deepseek", "phi", "jinja_smollm2")
DEFAULT_SYSTEM = ("chatml", "qwen", "llama2", "mistral", "gemma", "llama3", "deepseek", "alpaca", "vicuna",
                  "intern2", "smollm2", "phi", "zephyr", "jinja_smollm2", "jinja_qwen3")
TOOLS = {"qwen": None, "qwen3": None, "qwen3_nothink": None, "llama3": None, "mistral": None, "glm4": None,
         "chatglm3": None, "chatml": "default", "default": None, "jinja_qwen3": None, "jinja_smollm2": None}
SMALL_ALPACA = ("alpaca", "llama2", "mistral", "glm4", "chatglm3", "fewshot", "qwen3", "intern2", "gemma")


def case(key: str, dataset: str, variant: str, note: str | None = None, tokenizer: str | None = None,
         tunelab_strict_rows: list[int] | None = None, **options: Any) -> dict[str, Any]:
    """One case: a template key ('model_own_<folder>' for template None), a dataset and its options.

    The tokenizer folder is the template's usual one unless `tokenizer` names another.
    """
    template = None if key.startswith("model_own_") else key
    folder = key[len("model_own_"):] if template is None else tokenizer or TEMPLATE_TOKENIZER[key]
    item = {"id": f"{key}/{dataset}/{variant}", "key": key, "template": template, "tokenizer": folder,
            "dataset": dataset, "options": {**DEFAULT_OPTIONS, **options}}
    if template == "gemma3":
        note = "LLaMA-Factory's gemma3 needs a multimodal processor even for text; a text-only stand-in was passed"
    if note:
        item["note"] = note
    if tunelab_strict_rows:
        item["tunelab_strict_rows"] = tunelab_strict_rows
    return item


def all_cases() -> list[dict[str, Any]]:
    """Every case, grouped by template key."""
    keys = list(TEMPLATE_TOKENIZER) + [f"model_own_{name}" for name in JINJA_TOKENIZERS]
    cases = []
    for key in keys:
        short = key.removeprefix("model_own_")
        cases.append(case(key, "alpaca_mix", "plain"))
        cases.append(case(key, "sharegpt_chat", "plain"))
        cases.append(case(key, "sharegpt_chat", "cutoff48", cutoff_len=48))
        if short in SMALL_ALPACA:
            cases.append(case(key, "alpaca_mix", "cutoff64", cutoff_len=64))
        if short in TRAIN_ON_PROMPT:
            cases.append(case(key, "sharegpt_chat", "train_on_prompt", train_on_prompt=True))
        if short in MASK_HISTORY:
            cases.append(case(key, "sharegpt_chat", "mask_history", mask_history=True))
        if short in DEFAULT_SYSTEM:
            cases.append(case(key, "alpaca_mix", "default_system", default_system="You are a careful assistant."))
        if short in TOOLS:
            note = None
            if key.startswith("model_own_"):
                note = ("template None: LLaMA-Factory parses the Jinja template's turn slots but writes tools and "
                        "function calls in its 'default' tool format, not the Jinja template's own")
            cases.append(case(key, "sharegpt_tools", "tools", note=note, tool_format=TOOLS[short]))
    cases += [
        case("chatml", "sharegpt_chat", "mask_history+train_on_prompt", mask_history=True, train_on_prompt=True),
        case("qwen", "sharegpt_tools", "tools_default_format", tool_format="default"),
        case("llama3", "sharegpt_tools", "tools_cutoff48", cutoff_len=48),
        case("glm4", "sharegpt_tools_single", "tools_mask_history", mask_history=True),
        case("glm4", "sharegpt_tools_single", "tools_single"),
        case("chatglm3", "sharegpt_tools_single", "tools_single"),
        case("mistral", "sharegpt_tools", "tools_mask_history", mask_history=True),
        case("chatml", "sharegpt_think", "plain"),
        case("deepseek3", "sharegpt_think", "plain"),
        case("qwen3_nothink", "sharegpt_think", "plain"),
        case("qwen3", "sharegpt_think", "thinking_true", enable_thinking=True),
        case("qwen3", "sharegpt_think", "thinking_false", enable_thinking=False),
        case("qwen3", "sharegpt_think", "thinking_none", enable_thinking=None),
        case("qwen3", "sharegpt_think", "thinking_mask_history", mask_history=True),
        case("qwen3", "sharegpt_think", "thinking_false_mask_history", enable_thinking=False, mask_history=True),
        case("qwen3", "sharegpt_think", "thinking_train_on_prompt", train_on_prompt=True),
        case("qwen3", "sharegpt_think", "thinking_cutoff48", cutoff_len=48),
        case("qwen3", "alpaca_mix", "thinking_false", enable_thinking=False),
        case("qwen3", "sharegpt_tools", "tools_thinking_false", enable_thinking=False),
        case("model_own_jinja_qwen3", "sharegpt_think", "thinking_true", enable_thinking=True),
        case("model_own_jinja_qwen3", "sharegpt_think", "thinking_false", enable_thinking=False),
        case("model_own_jinja_qwen3", "sharegpt_think", "thinking_mask_history", mask_history=True),
        case("model_own_jinja_qwen3", "alpaca_mix", "thinking_false", enable_thinking=False),
        case("qwen3", "sharegpt_think", "thinking_preserve_mask_history", mask_history=True,
             preserve_thinking=True),
        case("chatml", "sharegpt_chat", "mask_history_cutoff48", mask_history=True, cutoff_len=48),
        case("llama3", "sharegpt_chat", "mask_history_cutoff48", mask_history=True, cutoff_len=48),
        case("glm4", "sharegpt_chat", "mask_history_cutoff48", mask_history=True, cutoff_len=48),
        case("llama2", "sharegpt_chat", "train_on_prompt_cutoff48", train_on_prompt=True, cutoff_len=48),
        case("qwen", "sharegpt_chat", "default_system", default_system="You are a careful assistant."),
        case("llama2", "sharegpt_chat", "default_system", default_system="You are a careful assistant."),
        case("llama3", "sharegpt_tools", "tools_qwen_format", tool_format="qwen"),
        case("mistral", "sharegpt_tools", "tools_default_format", tool_format="default"),
        case("llama3", "sharegpt_chat", "spm_stop_words_added", tokenizer="spm",
             note="the spm tokenizer lacks <|eot_id|> and <|eom_id|>: LLaMA-Factory adds them as new special tokens"),
        case("chatml", "sharegpt_chat", "spm", tokenizer="spm"),
        case("qwen", "sharegpt_tool_thought", "plain"),
        case("qwen3", "sharegpt_tool_thought", "thinking_true"),
        case("qwen3", "sharegpt_tool_thought", "thinking_false", enable_thinking=False),
        case("llama3", "sharegpt_tool_thought", "plain"),
        case("glm4", "sharegpt_tool_thought", "plain"),
        case("chatml", "sharegpt_tool_thought", "default_format", tool_format="default"),
        case("mistral", "sharegpt_tool_thought", "plain",
             note="Llama2Template passes no thought/tool-call words to the function formatter, so the JSON is invalid"),
        case("model_own_jinja_qwen3", "sharegpt_tool_thought", "plain"),
        *[case(key, "alpaca_edge", "plain", tunelab_strict_rows=EMPTY_ANSWER_ROWS,
               note="LLaMA-Factory trains on empty answers; tunelab's strict mode rejects those rows")
          for key in ("chatml", "llama2", "glm4")],
        case("chatml", "sharegpt_bad", "dropped_rows"),
        case("llama3", "sharegpt_bad", "dropped_rows"),
        case("qwen3", "sharegpt_bad", "dropped_rows"),
    ]
    return sorted(cases, key=lambda item: keys.index(item["key"]))


# ---------------------------------------------------------------------------------------------------------------
# Running LLaMA-Factory
# ---------------------------------------------------------------------------------------------------------------


class FixedDatetime(datetime):
    """Stands in for datetime in LLaMA-Factory's tool_utils so the llama3 'Today Date' line is fixed."""

    @classmethod
    def now(cls, tz=None):  # noqa: ANN001, ANN206
        return cls.fromisoformat(FIXED_DATE)


def import_llamafactory() -> SimpleNamespace:
    """LLaMA-Factory's pieces this script drives (imported late: the env vars above must be set first)."""
    # LLaMA-Factory 0.9.5 imports fine on this CPU venv; if torchvision/torchaudio were missing, minimal
    # stand-in modules in sys.modules would be needed here (none are at the time of writing).
    from transformers import AutoTokenizer, Seq2SeqTrainingArguments

    import llamafactory.data.template as lf_template
    import llamafactory.data.tool_utils as lf_tool_utils
    from llamafactory.data import get_dataset
    from llamafactory.data.loader import _get_merged_dataset
    from llamafactory.hparams import DataArguments

    lf_tool_utils.datetime = FixedDatetime
    for name in ("llamafactory", "transformers", "datasets"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import datasets

    datasets.disable_progress_bars()
    return SimpleNamespace(AutoTokenizer=AutoTokenizer, TrainingArguments=Seq2SeqTrainingArguments,
                           template=lf_template, pristine=copy.deepcopy(lf_template.TEMPLATES),
                           get_dataset=get_dataset, merged=_get_merged_dataset, DataArguments=DataArguments)


def fresh_templates(lf: SimpleNamespace) -> None:
    """Undo earlier cases: get_template_and_fix_tokenizer mutates the registered Template objects in place."""
    lf.template.TEMPLATES.clear()
    lf.template.TEMPLATES.update(copy.deepcopy(lf.pristine))


def processor_for(template: str | None) -> Any:
    """A stand-in multimodal processor where LLaMA-Factory's template insists on one.

    gemma3's mm plugin raises 'Processor was not found' without a processor even for text-only rows; with no
    images it only reads these attributes, so text-only rows tokenize exactly as with Gemma 3's real processor.
    """
    if template == "gemma3":
        return SimpleNamespace(image_processor=SimpleNamespace(), boi_token="<start_of_image>",
                               full_image_sequence="<start_of_image>",
                               image_do_pan_and_scan=False)
    return None


ERROR_KEYS = {"train_on_prompt": r"train_on_prompt", "parallel functions": r"parallel|function.?call",
              "Invalid JSON format in function message": r"json|function.?call"}


def error_match(message: str) -> str:
    """A regex the test expects tunelab's error message to match: the config key or the feature LF rejected."""
    for needle, pattern in ERROR_KEYS.items():
        if needle in message:
            return pattern
    raise RuntimeError(f"no error_match for LLaMA-Factory error {message!r}; add one to ERROR_KEYS")


def dropped_rows(lf: SimpleNamespace, data_args: Any, model_args: Any, training_args: Any) -> list[int]:
    """Rows LLaMA-Factory's SFT processor skips ('Dropped invalid example'): prompt not odd or response not one."""
    aligned = lf.merged(data_args.dataset, model_args, data_args, training_args, "sft")
    return [index for index, row in enumerate(aligned)
            if len(row["_prompt"]) % 2 != 1 or len(row["_response"]) != 1]


def run_case(lf: SimpleNamespace, item: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """LLaMA-Factory's result for one case: rows of input_ids/labels, or the error it raised."""
    fresh_templates(lf)
    options = item["options"]
    tokenizer = lf.AutoTokenizer.from_pretrained(str(TOKENIZERS / item["tokenizer"]))
    model_args = SimpleNamespace(cache_dir=str(workdir / "hf_cache"), hf_hub_token=None, ms_hub_token=None,
                                 om_hub_token=None)
    training_args = lf.TrainingArguments(output_dir=str(workdir / "out"), report_to="none", seed=42)
    try:
        data_args = lf.DataArguments(template=item["template"], dataset=item["dataset"], dataset_dir=str(DATA),
                                     preprocessing_num_workers=None, overwrite_cache=True, streaming=False,
                                     **options)
        template = lf.template.get_template_and_fix_tokenizer(tokenizer, data_args)
        with contextlib.redirect_stdout(io.StringIO()):
            module = lf.get_dataset(template, model_args, data_args, training_args, stage="sft", tokenizer=tokenizer,
                                    processor=processor_for(item["template"]))
    except Exception as exc:  # noqa: BLE001 - a rejected case is recorded as such
        message = f"{type(exc).__name__}: {exc}"
        return {"error": message, "error_match": error_match(message)}
    train = module["train_dataset"]
    result: dict[str, Any] = {
        "eos_token": tokenizer.eos_token, "eos_token_id": tokenizer.eos_token_id,
        "pad_token": tokenizer.pad_token, "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id, "vocab_size": len(tokenizer),
        "stop_token_ids": sorted(template.get_stop_token_ids(tokenizer)),
        "rows": [{"input_ids": ids, "labels": labels} for ids, labels in zip(train["input_ids"], train["labels"])],
    }
    raw_count = len(DATASETS[item["dataset"]][1])
    result["dropped_rows"] = dropped_rows(lf, data_args, model_args, training_args) if len(train) != raw_count else []
    if len(train) + len(result["dropped_rows"]) != raw_count:
        raise RuntimeError(f"{item['id']}: {len(train)} rows + {result['dropped_rows']} dropped != {raw_count}")
    return result


def compact_json(payload: dict[str, Any]) -> str:
    """Indented JSON with every list of numbers on one line (the id lists would otherwise be one per line)."""
    text = json.dumps(payload, ensure_ascii=False, indent=1)
    return re.sub(r"\[\s*(-?\d+(?:,\s*-?\d+)*)\s*\]",
                  lambda match: "[" + ",".join(part.strip() for part in match.group(1).split(",")) + "]", text)


def write_golden(cases: list[dict[str, Any]]) -> None:
    """One golden file per template key."""
    if GOLDEN.exists():
        shutil.rmtree(GOLDEN)
    GOLDEN.mkdir(parents=True)
    by_key: dict[str, list[dict[str, Any]]] = {}
    for item in cases:
        by_key.setdefault(item["key"], []).append(item)
    for key, items in by_key.items():
        payload = {"llamafactory": LLAMAFACTORY_VERSION, "date": FIXED_DATE, "template": items[0]["template"],
                   "cases": [{k: v for k, v in item.items() if k != "key"} for item in items]}
        (GOLDEN / f"{key}.json").write_text(compact_json(payload) + "\n", encoding="utf-8")


def summary_line(item: dict[str, Any]) -> str:
    """One row of the printed table."""
    result = item["result"]
    if "error" in result:
        outcome = "error: " + result["error"][:60]
    else:
        lengths = [len(row["input_ids"]) for row in result["rows"]]
        outcome = f"{len(lengths)} rows, {min(lengths)}-{max(lengths)} tokens, eos {result['eos_token']!r}"
        if result["dropped_rows"]:
            outcome += f", dropped {result['dropped_rows']}"
    return f"{item['id']:<58} {item['tokenizer']:<14} {outcome}"


def main() -> None:
    """Regenerate data, tokenizers and golden files, and print a summary table."""
    start = time.perf_counter()
    write_data()
    write_tokenizers()
    lf = import_llamafactory()
    cases = all_cases()
    with tempfile.TemporaryDirectory() as tmp:
        for item in cases:
            item["result"] = run_case(lf, item, Path(tmp))
            print(summary_line(item), flush=True)
    write_golden(cases)
    errors = sum("error" in item["result"] for item in cases)
    dropped = sum(bool(item["result"].get("dropped_rows")) for item in cases)
    print(f"{len(cases)} cases ({errors} rejected by LLaMA-Factory, {dropped} with dropped rows) in "
          f"{len({item['key'] for item in cases})} golden files; {time.perf_counter() - start:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
