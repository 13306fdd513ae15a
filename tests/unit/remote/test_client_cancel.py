"""A request cancelled while it is being retried stops, instead of being retried to completion (Ctrl-C)."""

from __future__ import annotations

import asyncio

import pytest

from tunelab.remote.client import being_cancelled


def test_being_cancelled_sees_a_pending_cancellation() -> None:
    seen: list[bool] = []

    async def work() -> None:
        seen.append(being_cancelled())
        asyncio.current_task().cancel()
        seen.append(being_cancelled())
        await asyncio.sleep(0)

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(work())
    assert seen == [False, True]
