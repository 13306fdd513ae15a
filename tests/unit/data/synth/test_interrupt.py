"""Ctrl-C in the middle of `tunelab data synth` loses nothing received: every reply that arrived is in the log, and
the rerun asks only for the ids without one, so the union is complete and no received id is asked again."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from fault_server import fault_server

import tunelab
from tunelab.data.tools.synth.config import load_synth_config
from tunelab.data.tools.synth.run import synthesize

from .conftest import write_config

TOPICS = [f"主题{number}" for number in range(12)]


def interruptible() -> None:
    """In the child before exec: SIGINT as a terminal's Ctrl-C delivers it. A SIGINT ignored or blocked in the test
    process (something an earlier test in the same session loads does that) would otherwise be inherited, and
    Python then never raises KeyboardInterrupt (nohup semantics)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def test_sigint_mid_run_then_rerun_completes_without_asking_twice(folder: Path) -> None:
    slow = {"seconds": 0.25}

    def answer(messages: list[dict[str, str]]) -> str:
        time.sleep(slow["seconds"])
        return "答：" + messages[-1]["content"]

    with fault_server(answer=answer) as server:
        path = write_config(folder, server.base_url, seeds={"topics": TOPICS},
                            prompt={"template": "{{ topic }}#{{ index }}"},
                            endpoint={"base_url": server.base_url, "model": "m", "concurrency": 2})
        log = folder / "out" / "synth.synth.jsonl"
        env = {**os.environ, "NO_COLOR": "1", "PYTHONPATH": str(Path(tunelab.__file__).parents[1])}
        process = subprocess.Popen([sys.executable, "-m", "tunelab", "data", "synth", str(path)], cwd=folder,
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   preexec_fn=interruptible)
        deadline = time.monotonic() + 60
        while not (log.exists() and len(log.read_text().splitlines()) >= 4):
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        assert process.returncode == 130, (out, err)
        assert "interrupted: every reply received is in the log" in out and "Traceback" not in err
        saved = json.loads((folder / "out" / "synth.report.json").read_text())
        assert saved["interrupted"] is True and not (folder / "out" / "synth.json").exists()
        received = [json.loads(line) for line in log.read_text().splitlines()]  # every line whole
        done = {(entry["source"]["topic"], entry["index"]) for entry in received}
        assert 4 <= len(done) < 24 and len(done) == len(received)
        asked_before = len(server.received)
        slow["seconds"] = 0.0
        report = synthesize(load_synth_config(path), str(path))
        rerun = [body["messages"][-1]["content"] for body in server.received[asked_before:]]
    assert report.accepted == 24 and report.missing == 0
    assert not {f"{topic}#{index}" for topic, index in done} & set(rerun)
    assert len(rerun) == 24 - len(done)
    ids = [json.loads(line)["id"] for line in log.read_text().splitlines()]
    assert len(ids) == len(set(ids)) == 24
