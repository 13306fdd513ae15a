"""A child that its parent stops with SIGINT stops on it even where a shell started the parent with SIGINT ignored."""

from __future__ import annotations

import signal

import pytest

from tunelab.runtime.processes import INTERRUPTIBLE, allow_interrupt, interruptible_env


@pytest.fixture
def sigint_kept():
    previous = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, previous)


def test_an_ignored_sigint_is_restored_only_when_the_parent_asked(monkeypatch, sigint_kept) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    monkeypatch.delenv(INTERRUPTIBLE, raising=False)
    allow_interrupt()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # the shell's rule for background commands stands
    monkeypatch.setenv(INTERRUPTIBLE, interruptible_env()[INTERRUPTIBLE])
    allow_interrupt()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_handler_of_the_process_is_left_alone(monkeypatch, sigint_kept) -> None:
    def handler(*_):
        return None

    signal.signal(signal.SIGINT, handler)
    monkeypatch.setenv(INTERRUPTIBLE, "1")
    allow_interrupt()
    assert signal.getsignal(signal.SIGINT) is handler
