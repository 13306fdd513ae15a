"""`tunelab train` starts again with tcmalloc preloaded where it is installed, once, and only then."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tunelab.runtime import malloc_preload
from tunelab.runtime.malloc_preload import MARK, QUIET, restart_env

LIB = "libtcmalloc_minimal.so.4"


def test_train_on_linux_with_tcmalloc_restarts_with_it_preloaded() -> None:
    new = restart_env(["train", "cfg.yaml"], {"PATH": "/bin"}, "linux", lambda: LIB)
    assert new == {"PATH": "/bin", "LD_PRELOAD": LIB, MARK: "tcmalloc", **QUIET}
    other = restart_env(["train"], {"LD_PRELOAD": "libfoo.so", "TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": "5"}, "linux",
                        lambda: LIB)
    assert other["LD_PRELOAD"] == f"libfoo.so {LIB}" and other["TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD"] == "5"


@pytest.mark.parametrize(("words", "environ", "platform", "library"), [
    (["eval", "cfg.yaml"], {}, "linux", LIB),  # only training runs
    ([], {}, "linux", LIB),
    (["train"], {}, "darwin", LIB),  # no LD_PRELOAD off Linux
    (["train"], {}, "linux", None),  # not installed
    (["train"], {MARK: "tcmalloc"}, "linux", LIB),  # started again already
    (["train"], {MARK: "system"}, "linux", LIB),  # the user's opt-out
    (["train"], {"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}, "linux", LIB),  # the user's own malloc
])
def test_everything_else_runs_as_it_is(words, environ, platform, library) -> None:
    searched = []
    assert restart_env(words, environ, platform, lambda: searched.append(1) or library) is None
    assert searched == ([1] if library is None else [])  # the library is looked for only where it is the last question


def test_glibc_for_want_of_tcmalloc_names_the_package_and_the_opt_out() -> None:
    hint = malloc_preload.missing_hint({}, "linux", lambda: None)
    assert "apt-get install libtcmalloc-minimal4" in hint and f"{MARK}=system" in hint
    searched = []
    for environ, platform in (({MARK: "system"}, "linux"), ({MARK: "tcmalloc"}, "linux"),
                              ({"LD_PRELOAD": "libjemalloc.so.2"}, "linux"), ({}, "darwin")):
        assert malloc_preload.missing_hint(environ, platform, lambda: searched.append(1)) is None
    assert searched == []  # decided before the library is looked for
    assert malloc_preload.missing_hint({}, "linux", lambda: LIB) is None  # installed (an in-process run): no hint


def test_the_restart_execs_this_command_line_and_in_process_calls_never_restart(monkeypatch) -> None:
    from tunelab.interfaces import cli

    calls = []
    monkeypatch.delenv(MARK, raising=False)
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    monkeypatch.setattr(malloc_preload, "find_tcmalloc", lambda: LIB)
    monkeypatch.setattr(os, "execve", lambda *args: calls.append(args))
    malloc_preload.restart_with_tcmalloc(["train", "cfg.yaml"])
    assert calls and calls[0][0] == sys.executable and calls[0][1] == sys.orig_argv
    assert calls[0][2]["LD_PRELOAD"] == LIB
    calls.clear()
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])  # argv given: a call inside this process
    assert calls == []
    monkeypatch.setattr(sys, "argv", ["tunelab", "train", "--help"])
    with pytest.raises(SystemExit):
        cli.main()  # the console script: its own process (the stubbed exec returned, so it went on)
    assert len(calls) == 1


@pytest.mark.skipif(not sys.platform.startswith("linux") or malloc_preload.find_tcmalloc() is None,
                    reason="tcmalloc is not installed (Debian: libtcmalloc-minimal4)")
def test_a_real_restart_loads_tcmalloc_once() -> None:
    code = ("import os, sys\nfrom tunelab.runtime import malloc_preload\n"
            "loaded = any('tcmalloc' in line for line in open('/proc/self/maps'))\n"
            "print('start', os.environ.get('TUNELAB_MALLOC'), loaded, flush=True)\n"
            "malloc_preload.restart_with_tcmalloc(['train'])\nprint('ran', flush=True)")
    environ = {k: v for k, v in os.environ.items() if k not in (MARK, "LD_PRELOAD")}
    out = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True,
                         timeout=60).stdout.split("\n")
    assert out[:3] == ["start None False", "start tcmalloc True", "ran"]
