"""The glibc malloc settings apply where glibc is, and are refused quietly elsewhere."""

from __future__ import annotations

import ctypes
import platform

import pytest

from tunelab.runtime import allocator


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_glibc_accepts_the_settings() -> None:
    assert allocator.keep_freed_memory() is True


def test_a_c_library_without_mallopt_is_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoMallopt:
        def __init__(self, name: str) -> None:
            pass

        def __getattr__(self, name: str) -> None:
            raise AttributeError(name)

    monkeypatch.setattr(ctypes, "CDLL", NoMallopt)
    assert allocator.keep_freed_memory() is False
