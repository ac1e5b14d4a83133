"""The venue's rate limits, honoured like a careful bot: after a 429 or a 418 all venue work pauses.

Binance answers an over-weight client with HTTP 429 and, if it keeps going, with 418 and an IP ban
("banned until <epoch ms>"); both carry ``Retry-After`` (seconds). ccxt raises both as
``DDoSProtection`` (not ``RateLimitExceeded``), which ``bot.venues.errors.classify`` maps to
RATE_LIMITED. One ``RateGate`` per venue: ``GatedVenue`` puts every venue call of every caller (engine,
executor, treasury, reconciler) through it, so a limit met by one pauses all of them until the venue's
``Retry-After`` (else the ban's end, else the one-minute weight window) has passed; each new pause is
recorded once (``on_limit``: an event in the ledger). Jobs also skip while it is closed.

Limits are counted in real (wall) time, also against a fast emulator, so the gate uses a wall clock.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.venues.errors import Backoff, ErrorClass, banned_until_ms, classify, retry_after_s

__all__ = ["GatedVenue", "RateGate", "banned_until_ms", "wall_s"]

WEIGHT_WINDOW_S = 60.0  # Binance counts request weight per one-minute window


def wall_s() -> float:
    return time.time()


@dataclass
class RateGate:
    """Closed while the venue has asked us to slow down; ``trip`` returns True for a new pause."""

    base_s: float = 5.0
    cap_s: float = 120.0
    margin_s: float = 1.0
    wall: Callable[[], float] = wall_s
    until_s: float = 0.0
    strikes: int = 0
    pauses: int = 0

    def paused(self) -> bool:
        return self.wall() < self.until_s

    def remaining_s(self) -> float:
        return max(self.until_s - self.wall(), 0.0)

    def trip(self, exc: BaseException) -> bool:
        """Pause after a rate-limit error: until the ban's end (418), the venue's Retry-After, or else the
        end of the weight window and at least a growing backoff. True when the caller should report it: a
        new pause, or a ban that lengthens the current one."""
        now = self.wall()
        was_paused = now < self.until_s
        ban_ms = banned_until_ms(exc)
        retry = retry_after_s(exc)
        if ban_ms is not None:
            until = ban_ms / 1000 + self.margin_s  # absolute: the same end whatever clock asks
        elif retry is not None:
            until = now + retry + self.margin_s
        else:
            window_end = (now // WEIGHT_WINDOW_S + 1) * WEIGHT_WINDOW_S + self.margin_s
            until = max(window_end, now + Backoff(self.base_s, self.cap_s).delay(self.strikes + 1))
        self.strikes += 1
        extended = until > self.until_s
        self.until_s = max(self.until_s, until)
        if not was_paused:
            self.pauses += 1
        # a ban that outlasts a running pause is news too (a 429 pause turning into a 418 ban)
        return not was_paused or (ban_ms is not None and extended)

    def ok(self) -> None:
        """A venue call succeeded after the pause: the next limit starts from the base backoff again."""
        if not self.paused():
            self.strikes = 0


OnLimit = Callable[[str, BaseException], Awaitable[None]]


class GatedVenue:
    """A venue whose every coroutine call waits while the gate is closed and trips it on a 429/418.

    The error is still raised to the caller (a 429/418 request was not executed); it is marked
    ``gated`` so the engine does not count it twice. ``watch_marks`` (a stream) and plain attributes pass
    through: the mark poll waits out limits itself."""

    def __init__(
        self,
        inner: Any,
        gate: RateGate,
        *,
        on_limit: OnLimit | None = None,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        self.inner = inner
        self.gate = gate
        self.on_limit = on_limit
        self.sleep = sleep
        self._wrapped: dict[str, Callable[..., Awaitable[Any]]] = {}

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if not inspect.iscoroutinefunction(target):
            return target
        wrapped = self._wrapped.get(name)
        if wrapped is None:
            wrapped = self._wrapped[name] = self._gated(name)
        return wrapped

    def _gated(self, name: str) -> Callable[..., Awaitable[Any]]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            await self.wait_open()
            try:
                result = await getattr(self.inner, name)(*args, **kwargs)
            except Exception as exc:
                if classify(exc) is ErrorClass.RATE_LIMITED:
                    await self.limited(name, exc)
                raise
            self.gate.ok()
            return result

        call.__name__ = name
        return call

    async def wait_open(self) -> None:
        """Sleep until the gate opens (a ban met meanwhile by another caller extends the wait)."""
        while (left := self.gate.remaining_s()) > 0:
            await self.sleep(left)

    async def limited(self, method: str, exc: BaseException) -> None:
        exc.gated = True  # type: ignore[attr-defined]  # marks it counted; the engine reads it by getattr
        if self.gate.trip(exc) and self.on_limit is not None:
            await self.on_limit(method, exc)
