"""Returning freed heap memory to the operating system.

glibc keeps the memory a long-running server freed (a batch's KV cache, prefill activations) in its arenas, so
the process's RSS stays at its peak after a burst of requests. `malloc_trim(0)` hands the free pages of every arena
back; the engine calls it when its last running row ends.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools


@functools.cache
def _trim_function() -> ctypes._CFuncPtr | None:
    """glibc's malloc_trim, or None where the C library has none (musl, macOS, Windows)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None)
    except OSError:
        return None


def release_free_memory() -> bool:
    """Give the heap's free pages back to the operating system; False where that is not possible."""
    trim = _trim_function()
    return bool(trim(0)) if trim is not None else False
