"""Request weights, 429 once over the limit, 418 after repeated violations, reset per minute."""

from __future__ import annotations

import pytest

from bot.emulator.weights import RateLimiter, RateLimits, family, request_weight
from bot.sim.errors import SimError


def test_weights_follow_params() -> None:
    assert request_weight("GET", "/fapi/v1/depth", {"limit": "1000"}) == 20
    assert request_weight("GET", "/api/v3/depth", {"limit": "5"}) == 5
    assert request_weight("GET", "/fapi/v1/ticker/24hr", {}) == 40
    assert request_weight("GET", "/fapi/v1/ticker/24hr", {"symbol": "BTCUSDT"}) == 1
    assert request_weight("GET", "/unknown", {}) == 1
    assert family("/sapi/v1/asset/transfer") == "sapi" and family("/futures/data/x") == "fapi"


def test_429_then_418_then_new_minute() -> None:
    now = [60_000]
    limiter = RateLimiter(RateLimits(per_minute={"api": 10}, ban_after=1, ban_ms=30_000), now_ms=lambda: now[0])
    assert limiter.charge("api", 10) == 10
    with pytest.raises(SimError) as first:
        limiter.charge("api", 1)
    assert first.value.http_status == 429 and first.value.code == -1003
    with pytest.raises(SimError) as second:
        limiter.charge("api", 1)
    assert second.value.http_status == 418 and "banned until" in second.value.msg
    now[0] += 60_000  # next minute, still banned (30 s ban from t=60 s ends at 90 s)
    assert limiter.charge("api", 1) == 1
    assert limiter.charge("fapi", 5) == 5
