"""Errors of remote calls: the message names the endpoint and the fix."""

from __future__ import annotations


class RemoteError(Exception):
    """A request that failed for good (after its retries) or could not be sent; the message says why."""


class BudgetReached(RemoteError):
    """The token or cost budget is spent: no further request is sent (those already answered are kept)."""
