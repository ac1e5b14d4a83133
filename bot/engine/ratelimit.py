"""The venue's rate limits, honoured like a careful bot: after a 429 or a 418 all venue work pauses.

Binance answers an over-weight client with HTTP 429 and, if it keeps going, with 418 and an IP ban
("banned until <epoch ms>"). ccxt raises both as ``DDoSProtection`` (not ``RateLimitExceeded``), which
``bot.venues.errors.classify`` maps to RATE_LIMITED. Every job checks the gate before touching the venue
and skips while it is closed; the pause grows with consecutive limits and resets after a success.

Limits are counted in real (wall) time, also against a fast emulator, so the gate uses a wall clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from bot.venues.errors import banned_until_ms

__all__ = ["RateGate", "banned_until_ms", "wall_s"]


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
        """Pause after a rate-limit error: until the ban's end (418) or a growing backoff (429). True when
        the caller should report it: a new pause, or a ban that lengthens the current one."""
        now = self.wall()
        was_paused = now < self.until_s
        ban_ms = banned_until_ms(exc)
        if ban_ms is not None:
            until = ban_ms / 1000 + self.margin_s
        else:
            until = now + min(self.base_s * 2**self.strikes, self.cap_s)
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
