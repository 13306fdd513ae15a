"""tcmalloc for `tunelab train` on Linux, where it is installed: less memory than glibc's malloc over a run.

glibc's malloc fragments over a training run: the tensors of a step have slightly different sizes from step to
step (packed batches of different lengths), and the freed memory between the ones that live on stays resident.
Full fine-tuning of SmolLM2-135M, 30 steps (bench/README.md, "Training memory"): peak RSS 5,043 MiB with glibc,
4,261 MiB with tcmalloc, 4% faster; about 1 GiB of glibc's heap was free memory it could not hand out again.

A library given in LD_PRELOAD is loaded before the C library only when a process starts, so `tunelab train`
starts itself again (exec: the same process id, arguments, streams and signals) with LD_PRELOAD naming tcmalloc,
once, before anything heavy is imported. Nothing happens where tcmalloc is missing (Debian/Ubuntu package
libtcmalloc-minimal4), off Linux, where LD_PRELOAD already names a malloc, or where the user set
TUNELAB_MALLOC=system (glibc's malloc, with runtime/allocator.py's settings).
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from collections.abc import Callable, Mapping, Sequence

from tunelab.runtime import env

MARK = "TUNELAB_MALLOC"  # "tcmalloc": set by the restart (never restart twice); "system": the user's opt-out
COMMANDS = ("train",)  # the commands that allocate a training run's tensors (a sweep's trials are `train` runs)
LIBRARY_NAMES = ("tcmalloc_minimal", "tcmalloc")
# gperftools prints a line for every allocation above 1 GiB (a large model's embedding); a tensor is no news
QUIET = {"TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": str(1 << 40)}


def find_tcmalloc() -> str | None:
    """The file name of an installed tcmalloc (as the dynamic linker finds it), or None."""
    for name in LIBRARY_NAMES:
        found = ctypes.util.find_library(name)
        if found:
            return found
    return None


def glibc_by_default(environ: Mapping[str, str], platform: str) -> bool:
    """Whether this process would run on glibc's malloc unless tcmalloc is preloaded: Linux, not started again
    already, not opted out (TUNELAB_MALLOC set either way), and no malloc of the user's in LD_PRELOAD."""
    return platform.startswith("linux") and not environ.get(MARK) and "malloc" not in environ.get("LD_PRELOAD", "")


def restart_env(words: Sequence[str], environ: Mapping[str, str], platform: str,
                find: Callable[[], str | None]) -> dict[str, str] | None:
    """The environment to start `tunelab WORDS` again with, tcmalloc (found by `find`) preloaded; None to go on as
    is. `find` runs only for a command that would restart: looking for a missing library takes about 60 ms, which
    every other command's start-up is spared."""
    if not words or words[0] not in COMMANDS or not glibc_by_default(environ, platform):
        return None
    library = find()
    if library is None:
        return None
    preload = environ.get("LD_PRELOAD", "")
    return {**QUIET, **environ, "LD_PRELOAD": f"{preload} {library}".strip(), MARK: "tcmalloc"}


def restart_with_tcmalloc(words: Sequence[str]) -> None:
    """Start this command again with tcmalloc preloaded where restart_env says so (does not return then); a
    failed exec leaves the command running as it is."""
    new = restart_env(words, env.variables(), sys.platform, find_tcmalloc)
    if new is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, sys.orig_argv, new)
    except OSError:
        return


def missing_hint(environ: Mapping[str, str], platform: str, find: Callable[[], str | None]) -> str | None:
    """What to install for less memory, where a training process runs on glibc's malloc only because tcmalloc is
    missing (not where the user opted out or preloaded another malloc); None otherwise."""
    if not glibc_by_default(environ, platform) or find() is not None:
        return None
    return ("tcmalloc is not installed: full fine-tuning's peak memory is about 15% lower with it "
            "(Debian/Ubuntu: apt-get install libtcmalloc-minimal4; TUNELAB_MALLOC=system hides this note)")


def active() -> bool:
    """True in a process that restart_with_tcmalloc started."""
    return env.variables().get(MARK) == "tcmalloc"
