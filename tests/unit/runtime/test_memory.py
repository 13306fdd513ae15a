"""Freed heap memory handed back to the operating system (glibc's malloc_trim)."""

from __future__ import annotations

import platform

import psutil
import pytest

from tunelab.runtime.memory import release_free_memory


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_freed_memory_goes_back() -> None:
    process = psutil.Process()
    blocks = [bytearray(100_000) for _ in range(2_000)]  # ~200 MB in blocks below the mmap threshold: on the heap
    blocks = blocks[1::2]  # freed blocks interleaved with live ones: the heap cannot shrink by itself
    before = process.memory_info().rss
    release_free_memory()
    assert process.memory_info().rss < before - 50 * 2**20
    del blocks
