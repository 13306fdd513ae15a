"""Eval and export commands run detached: their output is read from a log file, so a closed browser tab (Gradio
closes the handler's generator) or a stopped UI ends the reading, never the command."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from tunelab.interfaces.webui.command_run import CommandLog, run_streamed

# prints a line, waits, prints 300 kB (more than a pipe holds: through a pipe nobody reads any more it would block
# here for ever), then writes its session id
LATE_WRITER = """
import os, sys, time
print("first", flush=True)
time.sleep(1.0)
for _ in range(5000):
    print("x" * 60, flush=True)
with open(sys.argv[1] + ".tmp", "w") as out:
    out.write(str(os.getsid(0)))
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
"""


def test_run_streamed_yields_output_then_the_exit_code(tmp_path: Path) -> None:
    script = ("import sys, time; print('a'); print('b'); sys.stdout.write('50%'); sys.stdout.flush(); time.sleep(1); "
              "sys.stdout.write('\\r100%'); sys.exit(3)")
    logs = [(list(log.lines), log.current, log.code)
            for log in run_streamed([sys.executable, "-c", script], tmp_path / "a.log", tmp_path)]
    assert logs[-1] == (["a", "b", "100%"], "", 3)
    assert (["a", "b"], "50%", None) in logs  # the progress line while it is written
    assert all(code is None for _, _, code in logs[:-1])
    assert (tmp_path / "a.log").read_bytes() == b"a\nb\n50%\r100%"


def test_a_closed_tab_leaves_the_command_running_in_its_own_session(tmp_path: Path) -> None:
    marker = tmp_path / "done"
    stream = run_streamed([sys.executable, "-c", LATE_WRITER, str(marker)], tmp_path / "cmd.log", tmp_path)
    first = next(stream)
    assert first.lines[:1] == ["first"] and first.code is None
    stream.close()  # what Gradio does to a handler's generator once its tab is gone (queueing.reset_iterators)
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert int(marker.read_text()) != os.getsid(0)  # its own session: a Ctrl-C of the UI does not reach it
    assert (tmp_path / "cmd.log").read_text().splitlines() == ["first"] + ["x" * 60] * 5000


def test_the_line_being_written_is_shown_in_its_last_state() -> None:
    log = CommandLog(["tunelab", "eval", "x.yaml"], ["loading"], current="answering  40%")
    assert log.text() == "$ tunelab eval x.yaml\nloading\nanswering  40%"
    log.add("answering  10%\ranswering 100%\r\n")
    assert log.lines[-1] == "answering 100%"
