"""A synthesis run against the scripted loopback server: faults retried, replies logged as they arrive, resume
asks only what is missing, budgets stop cleanly, rejected replies re-asked, dedup, the dataset registered."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from fault_server import fault_server

from tunelab.config.errors import ConfigError
from tunelab.data.errors import DataError
from tunelab.data.registry import sha1_of
from tunelab.data.tools.synth.config import load_synth_config
from tunelab.data.tools.synth.run import synthesize
from tunelab.data.tools.synth.report import SynthReport
from tunelab.interfaces.cli import main

from .conftest import write_config

Messages = list[dict[str, str]]


def run(path: Path) -> SynthReport:
    return synthesize(load_synth_config(path), str(path))


def log_lines(folder: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (folder / "out" / "synth.synth.jsonl").read_text().splitlines()]


def prompts(server: object) -> list[str]:
    return [body["messages"][-1]["content"] for body in server.received]  # type: ignore[attr-defined]


def test_faults_are_retried_and_every_reply_lands_in_the_dataset(folder: Path) -> None:
    endpoint = {"base_url": "", "model": "m", "timeout": 1, "backoff": 0.01, "concurrency": 2}
    with fault_server(["429", "500", "hang", "malformed", "drop"], hang=1.5) as server:
        endpoint["base_url"] = server.base_url
        report = run(write_config(folder, server.base_url, endpoint=endpoint))
    assert (report.requests, report.retries, report.accepted, report.ids) == (11, 5, 6, 6)
    assert report.prompt_tokens == 60 and report.failed == {} and report.missing == 0
    rows = json.loads((folder / "out" / "synth.json").read_text())
    assert len(rows) == 6 and report.written == 6
    assert rows[0] == {"instruction": "为保温杯写一个问答任务，第0个", "input": "",
                       "output": "echo: 为保温杯写一个问答任务，第0个", "seed": {"product": "保温杯", "task": "问答"}}
    assert [row["seed"]["product"] for row in rows] == ["保温杯", "保温杯", "跑鞋", "跑鞋", "耳机", "耳机"]
    entry = json.loads((folder / "out" / "dataset_info.json").read_text())["synth"]
    assert entry == {"file_name": "synth.json", "file_sha1": sha1_of(folder / "out" / "synth.json")}
    saved = json.loads((folder / "out" / "synth.report.json").read_text())
    assert saved["requests"] == 11 and saved["accepted"] == 6 and saved["missing"] == 0


def test_a_budget_stops_cleanly_and_a_rerun_asks_only_the_missing_ids(folder: Path) -> None:
    endpoint = {"base_url": "", "model": "m", "backoff": 0.01, "concurrency": 1}
    with fault_server() as server:
        endpoint["base_url"] = server.base_url
        path = write_config(folder, server.base_url, endpoint=endpoint, budget={"max_tokens_total": 100})
        first = run(path)  # each reply costs 10 + ~20 tokens: the budget is spent after the 4th
        assert first.accepted == 4 and first.unsent == 2 and "token budget" in str(first.budget)
        assert len(json.loads((folder / "out" / "synth.json").read_text())) == 4  # what was received is kept
        with pytest.raises(ConfigError, match="budget.max_tokens_total: already spent.*raise it"):
            run(path)
        asked_before = prompts(server)
        second = run(write_config(folder, server.base_url, endpoint=endpoint, budget={"max_tokens_total": 1000}))
        asked_after = prompts(server)[len(asked_before):]
    assert second.accepted == 6 and second.asked_this_run == 2 and len(asked_after) == 2
    assert not set(asked_after) & set(asked_before)
    assert sorted(Counter(line["id"] for line in log_lines(folder)).values()) == [1] * 6
    assert second.total_prompt_tokens == 60
    assert len(json.loads((folder / "out" / "synth.json").read_text())) == 6


def test_rejected_replies_are_asked_again_within_the_limit(folder: Path) -> None:
    asked: Counter[str] = Counter()

    def first_bad(messages: Messages) -> str:
        asked[messages[-1]["content"]] += 1
        return "不知道" if asked[messages[-1]["content"]] == 1 else "答案：" + messages[-1]["content"]

    with fault_server(answer=first_bad) as server:
        report = run(write_config(folder, server.base_url, checks={"regex": "^答案：", "max_attempts": 2}))
    assert report.accepted == 6 and report.requests == 12
    assert report.rejected["regex"].count == 6 and report.rejected["regex"].examples[0]["reply"] == "不知道"
    assert [line["accepted"] for line in log_lines(folder)] == [False] * 6 + [True] * 6


def test_ids_rejected_max_attempts_times_are_given_up_and_reported(folder: Path) -> None:
    with fault_server(answer=lambda messages: "不知道") as server:
        path = write_config(folder, server.base_url, checks={"regex": "^答案：", "max_attempts": 2})
        report = run(path)
        assert report.requests == 12 and len(report.gave_up) == 6 and report.dataset is None
        assert "incomplete: 6 ids" in "\n".join(report.lines())
        again = run(path)
        assert again.requests == 0 and len(server.received) == 12  # nothing left to ask within the limit
    assert not (folder / "out" / "synth.json").exists()


def test_near_duplicates_are_removed_by_data_dedup(folder: Path) -> None:
    count = Counter[str]()

    def same(messages: Messages) -> str:
        count["n"] += 1
        mark = "！" if count["n"] % 2 else "!"
        return json.dumps({"q": "同一个问题", "a": f"同一个答案{mark}"}, ensure_ascii=False)

    reply = {"mode": "json", "fields": {"instruction": "q", "output": "a"}}
    with fault_server(answer=same) as server:
        report = run(write_config(folder, server.base_url, reply=reply))
        assert (report.written, report.duplicates) == (1, 5)
        exact = run(write_config(folder, server.base_url, reply=reply, dedup="exact"))
    assert (exact.written, exact.duplicates) == (2, 4) and len(server.received) == 6  # the rebuild asked nothing


def test_topics_into_sharegpt_without_the_seed_field(folder: Path) -> None:
    with fault_server() as server:
        path = write_config(folder, server.base_url, seeds={"topics": ["春节", "中秋"]},
                            prompt={"template": "写一句{{ topic }}祝福", "system": "你是文案"},
                            generation={"n": 1}, output={"file": "out/greet.json", "format": "sharegpt",
                                                         "seed_field": None, "name": "greetings"})
        report = run(path)
    assert report.written == 2 and server.received[0]["messages"][0] == {"role": "system", "content": "你是文案"}
    rows = json.loads((folder / "out" / "greet.json").read_text())
    assert rows[0] == {"conversations": [{"from": "human", "value": "写一句春节祝福"},
                                         {"from": "gpt", "value": "echo: 写一句春节祝福"}]}
    assert json.loads((folder / "out" / "dataset_info.json").read_text())["greetings"]["formatting"] == "sharegpt"


def test_a_template_field_the_seeds_lack_fails_before_any_request(folder: Path) -> None:
    with fault_server() as server:
        path = write_config(folder, server.base_url, prompt={"template": "为{{ prodcut }}写"})
        with pytest.raises(DataError, match=r"seeds.json, row 1: prompt.template names prodcut, which the seeds "
                                            r"lack; did you mean product\?; the seed fields are: product, task"):
            run(path)
    assert server.received == []


def test_a_missing_seed_file_names_the_key(folder: Path) -> None:
    path = write_config(folder, "http://127.0.0.1:9/v1", seeds={"file": "nope.csv"})
    with pytest.raises(DataError, match="nope.csv: seeds.file: no such file; check the path"):
        run(path)


def test_a_torn_last_log_line_is_dropped_and_asked_again(folder: Path) -> None:
    with fault_server() as server:
        path = write_config(folder, server.base_url)
        run(path)
        log = folder / "out" / "synth.synth.jsonl"
        lines = log.read_text().splitlines()
        log.write_text("\n".join(lines[:5]) + "\n" + lines[5][:40])  # died while writing the 6th
        report = run(path)
    assert report.torn_lines == 1 and report.requests == 1 and report.accepted == 6
    assert len(log_lines(folder)) == 6


def test_the_cli_prints_errors_without_a_traceback(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(folder, "http://x/v1", generation={"n": -1})
    assert main(["data", "synth", str(path)]) == 2
    err = capsys.readouterr().err
    assert "generation.n: input should be greater than 0" in err and "Traceback" not in err


def test_the_cli_exits_0_when_complete_and_1_when_ids_are_missing(folder: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    with fault_server(["401"] + ["ok"] * 5) as server:
        path = write_config(folder, server.base_url, endpoint={"base_url": server.base_url, "model": "m",
                                                               "concurrency": 1})
        assert main(["data", "synth", str(path)]) == 1
        out = capsys.readouterr().out
        assert "failed: " in out and "HTTP 401" in out and "incomplete: 1 ids" in out
        assert main(["data", "synth", str(path)]) == 0
    assert "accepted 6/6 ids" in capsys.readouterr().out


def test_an_unset_key_variable_is_a_config_error_before_any_request(folder: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNTH_UNSET_KEY", raising=False)
    with fault_server() as server:
        path = write_config(folder, server.base_url, endpoint={"base_url": server.base_url, "model": "m",
                                                               "api_key_env": "SYNTH_UNSET_KEY"})
        with pytest.raises(ConfigError, match="endpoint.api_key_env: .*SYNTH_UNSET_KEY.* is not set; export"):
            run(path)
        monkeypatch.setenv("SYNTH_UNSET_KEY", "k")
        assert run(path).accepted == 6
    assert server.received[0]["model"] == "m"
