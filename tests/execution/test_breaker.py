from __future__ import annotations

from bot.execution.breaker import CircuitBreaker


def test_opens_after_k_consecutive_failures_and_closes_after_cooldown() -> None:
    b = CircuitBreaker(threshold=3, cooldown_ms=1000)
    assert not b.record_failure("BTC/USDT", 0)
    assert not b.record_failure("BTC/USDT", 0)
    assert b.record_failure("BTC/USDT", 10)
    assert b.is_open("BTC/USDT", 500) and not b.is_open("ETH/USDT", 500)
    assert b.open_until("BTC/USDT") == 1010
    assert not b.is_open("BTC/USDT", 1010)
    assert b.failures("BTC/USDT") == 0


def test_success_resets_the_count() -> None:
    b = CircuitBreaker(threshold=2, cooldown_ms=1000)
    b.record_failure("X/USDT", 0)
    b.record_success("X/USDT")
    assert not b.record_failure("X/USDT", 0)
    assert not b.is_open("X/USDT", 0)
