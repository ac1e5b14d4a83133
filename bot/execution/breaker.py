"""Per-symbol circuit breaker: after K consecutive failed actions, stop trading the symbol for a while.

State lives in memory (a restart closes every breaker, which is the conservative-enough choice because
reconciliation runs first); opening is also written to the ledger as an alert by the executor.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class CircuitBreaker:
    threshold: int
    cooldown_ms: int
    _failures: dict[str, int] = field(default_factory=dict)
    _open_until: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.threshold < 1 or self.cooldown_ms < 0:
            raise ValueError("threshold must be >= 1 and cooldown >= 0")

    def is_open(self, symbol: str, now_ms: int) -> bool:
        until = self._open_until.get(symbol)
        if until is None:
            return False
        if now_ms >= until:
            del self._open_until[symbol]
            self._failures[symbol] = 0
            return False
        return True

    def open_until(self, symbol: str) -> int | None:
        return self._open_until.get(symbol)

    def failures(self, symbol: str) -> int:
        return self._failures.get(symbol, 0)

    def record_success(self, symbol: str) -> None:
        self._failures[symbol] = 0

    def record_failure(self, symbol: str, now_ms: int) -> bool:
        """Count one failure; True when this failure opened the breaker."""
        n = self._failures.get(symbol, 0) + 1
        self._failures[symbol] = n
        if n >= self.threshold and symbol not in self._open_until:
            self._open_until[symbol] = now_ms + self.cooldown_ms
            return True
        return False
