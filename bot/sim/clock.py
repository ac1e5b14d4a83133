"""Injected time sources: the simulation never reads the wall clock except through a ``Clock``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int: ...


class ManualClock:
    """Time that moves only when told to (tests, backtests)."""

    def __init__(self, start_ms: int) -> None:
        self._now = int(start_ms)

    def now_ms(self) -> int:
        return self._now

    def set(self, now_ms: int) -> None:
        if now_ms < self._now:
            raise ValueError(f"clock cannot go back: {now_ms} < {self._now}")
        self._now = int(now_ms)

    def advance(self, delta_ms: int) -> int:
        if delta_ms < 0:
            raise ValueError(f"clock cannot go back: delta {delta_ms}")
        self._now += int(delta_ms)
        return self._now


class ScaledClock:
    """Simulated time running ``speed`` times faster than the wall clock (emulator demos).

    The real part comes from a monotonic source (``time.monotonic`` by default, injectable so it can be
    tested without sleeping); ``jump(delta_ms)`` adds simulated time instantly.
    """

    def __init__(self, start_ms: int, speed: float = 1.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self._start_ms = int(start_ms)
        self._speed = float(speed)
        self._monotonic = monotonic
        self._t0 = monotonic()

    @property
    def speed(self) -> float:
        return self._speed

    def now_ms(self) -> int:
        elapsed = self._monotonic() - self._t0
        return self._start_ms + int(elapsed * 1000.0 * self._speed)
