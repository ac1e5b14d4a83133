"""Bounded waits for tests: poll a condition until it holds or a deadline passes, then fail saying what
never happened (a test never sleeps a fixed time hoping something is done, nor loops without a bound)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def wait_until(
    check: Callable[[], T | Awaitable[T]], what: str, timeout_s: float = 15.0, interval_s: float = 0.02
) -> T:
    """The first truthy result of ``check()`` (a plain or an async callable), polled every ``interval_s``;
    AssertionError naming ``what`` after ``timeout_s`` of wall time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if inspect.isawaitable(found):
            found = await found
        if found:
            return found  # type: ignore[return-value]
        await asyncio.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def wait_until_sync(check: Callable[[], T], what: str, timeout_s: float = 60.0, interval_s: float = 0.05) -> T:
    """``wait_until`` for plain (non-async) tests: the first truthy ``check()``, polled every ``interval_s``;
    AssertionError naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
