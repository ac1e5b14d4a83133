"""Job bookkeeping shared by the live scheduler and the backtest loop: one job of a kind at a time,
in-flight jobs tracked so shutdown can wait for them, and every failure recorded instead of raised."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

JobFn = Callable[[], Awaitable[object]]


@dataclass
class JobRunner:
    """Runs named coroutine jobs, skipping a run while the previous one of the same name is in flight.

    ``on_done(name, seconds)`` gets the real time each run took (failed ones too), ``on_skip(name)`` each
    skipped run: the daemon feeds them to /metrics (``HealthState.observe_job`` / ``skip_job``).
    """

    on_error: Callable[[str, BaseException], Awaitable[None]] | None = None
    on_done: Callable[[str, float], None] | None = None
    on_skip: Callable[[str], None] | None = None
    _running: dict[str, asyncio.Task] = field(default_factory=dict)
    runs: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)

    async def run(self, name: str, fn: JobFn) -> None:
        """Run the job and wait for it (or return at once when one of that name is in flight)."""
        task = self.start(name, fn)
        if task is not None:
            await asyncio.shield(task)

    def start(self, name: str, fn: JobFn) -> asyncio.Task | None:
        """Start the job in the background; None when one of that name is still in flight (counted)."""
        task = self._running.get(name)
        if task is not None and not task.done():
            self.skipped[name] = self.skipped.get(name, 0) + 1
            if self.on_skip is not None:
                self.on_skip(name)
            return None
        task = asyncio.ensure_future(self._guarded(name, fn))
        self._running[name] = task
        return task

    async def _guarded(self, name: str, fn: JobFn) -> None:
        started = time.perf_counter()
        try:
            await fn()
            self.runs[name] = self.runs.get(name, 0) + 1
        except asyncio.CancelledError:
            raise  # cut short at shutdown: not a latency
        except Exception as exc:  # a job never takes the daemon down; it is recorded and retried next time
            log.warning("job %s failed: %s", name, type(exc).__name__)
            if self.on_error is not None:
                await self.on_error(name, exc)
        if self.on_done is not None:
            self.on_done(name, time.perf_counter() - started)

    async def idle(self, name: str) -> None:
        """Wait until no job of that name is in flight (its failure is already recorded, never raised)."""
        task = self._running.get(name)
        if task is not None and not task.done():
            await asyncio.wait([task])

    async def drain(self, timeout_s: float) -> bool:
        """Wait for in-flight jobs; True when all finished within the timeout."""
        pending = [t for t in self._running.values() if not t.done()]
        if not pending:
            return True
        _done, still = await asyncio.wait(pending, timeout=timeout_s)
        return not still
