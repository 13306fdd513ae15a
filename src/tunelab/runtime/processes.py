"""How tunelab starts one of its own commands as a child process: the argument list (never a shell string), one
builder for the sweep's trials and the web UI's jobs."""

from __future__ import annotations

import signal
import sys

from tunelab.runtime import env

# `python -u -m tunelab`: unbuffered, so that a parent reading the output sees progress while it happens
PYTHON_FLAGS = ("-u", "-m", "tunelab")
# set by a parent that stops its child with SIGINT, as Ctrl-C would (the web UI's abort)
INTERRUPTIBLE = "TUNELAB_INTERRUPTIBLE"


def tunelab_argv(*words: str) -> list[str]:
    """`tunelab WORDS...` run by this Python."""
    return [sys.executable, *PYTHON_FLAGS, *words]


def interruptible_env() -> dict[str, str]:
    """The variables that make a child started with them stop on SIGINT (allow_interrupt)."""
    return {INTERRUPTIBLE: "1"}


def allow_interrupt() -> None:
    """Let SIGINT interrupt this process again when the parent asked for it (interruptible_env) and it was
    ignored. A shell starts a background command with SIGINT ignored (`tunelab webui &` in a script, or under
    nohup) and every process it starts inherits that, so the web UI's abort would reach its run only as the kill
    after the grace period, with no chance to stop cleanly. Without the variable the shell's rule stands."""
    if env.flag(INTERRUPTIBLE) and signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
