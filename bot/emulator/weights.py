"""Binance request weights per endpoint, per-minute limits, then 429 and finally a 418 IP ban.

Binance counts weight per IP in fixed one-minute windows and per API family (spot ``/api``, ``/sapi``,
USD-M ``/fapi``). Over the limit it answers 429 -1003; a client that keeps going after
``ban_after`` 429s gets 418 until the ban ends. Both carry ``Retry-After`` (seconds): the end of the
minute window for a 429, the ban's end for a 418. Limits are configurable so tests can hit them quickly.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.emulator.auth import wall_ms
from bot.emulator.errors import ApiError

MINUTE_MS = 60_000
_BANNED_UNTIL = re.compile(r"banned until (\d{12,14})")

# Default weight limits per minute (Binance's published values).
DEFAULT_LIMITS: dict[str, int] = {"api": 6000, "sapi": 12000, "fapi": 2400}

# (method, path) -> weight; depth, tickers and openOrders depend on params (see ``request_weight``).
WEIGHTS: dict[tuple[str, str], int] = {
    ("GET", "/api/v3/exchangeInfo"): 20,
    ("GET", "/api/v3/time"): 1,
    ("GET", "/api/v3/ping"): 1,
    ("GET", "/api/v3/klines"): 2,
    ("GET", "/api/v3/account"): 20,
    ("GET", "/api/v3/account/commission"): 20,
    ("POST", "/api/v3/order"): 1,
    ("GET", "/api/v3/order"): 4,
    ("DELETE", "/api/v3/order"): 1,
    ("GET", "/api/v3/myTrades"): 20,
    ("POST", "/sapi/v1/asset/transfer"): 900,
    ("GET", "/sapi/v1/asset/transfer"): 1,
    ("GET", "/sapi/v1/bnbBurn"): 1,
    ("POST", "/sapi/v1/bnbBurn"): 1,
    ("GET", "/fapi/v1/exchangeInfo"): 1,
    ("GET", "/fapi/v1/time"): 1,
    ("GET", "/fapi/v1/premiumIndex"): 1,
    ("GET", "/fapi/v1/fundingRate"): 1,
    ("GET", "/fapi/v1/ticker/bookTicker"): 2,
    ("GET", "/fapi/v1/klines"): 5,
    ("GET", "/fapi/v1/markPriceKlines"): 5,
    ("GET", "/fapi/v3/account"): 5,
    ("GET", "/fapi/v2/account"): 5,
    ("POST", "/fapi/v1/order"): 0,
    ("GET", "/fapi/v1/order"): 1,
    ("DELETE", "/fapi/v1/order"): 1,
    ("GET", "/fapi/v1/userTrades"): 5,
    ("GET", "/fapi/v3/positionRisk"): 5,
    ("GET", "/fapi/v2/positionRisk"): 5,
    ("GET", "/fapi/v1/leverageBracket"): 1,
    ("GET", "/fapi/v1/income"): 30,
    ("POST", "/fapi/v1/leverage"): 1,
    ("POST", "/fapi/v1/marginType"): 1,
    ("GET", "/fapi/v1/symbolConfig"): 5,
    ("GET", "/fapi/v1/commissionRate"): 20,
    ("GET", "/fapi/v1/positionSide/dual"): 30,
    ("POST", "/fapi/v1/positionSide/dual"): 1,
}


def family(path: str) -> str:
    if path.startswith("/sapi"):
        return "sapi"
    if path.startswith("/fapi") or path.startswith("/futures"):
        return "fapi"
    return "api"


def _depth_weight(limit: int, futures: bool) -> int:
    if futures:
        return 2 if limit <= 50 else 5 if limit <= 100 else 10 if limit <= 500 else 20
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


def request_weight(method: str, path: str, params: dict[str, str]) -> int:
    """The weight Binance charges for this call (1 for anything not listed)."""
    has_symbol = bool(params.get("symbol"))
    if path in ("/api/v3/depth", "/fapi/v1/depth"):
        limit = int(params.get("limit") or (100 if path.startswith("/api") else 500))
        return _depth_weight(limit, path.startswith("/fapi"))
    if path == "/api/v3/ticker/24hr":
        if has_symbol:
            return 2
        symbols = params.get("symbols")
        return 80 if not symbols else 40
    if path == "/fapi/v1/ticker/24hr":
        return 1 if has_symbol else 40
    if path == "/api/v3/ticker/bookTicker":
        return 2 if has_symbol or params.get("symbols") else 4
    if path == "/api/v3/openOrders":
        return 6 if has_symbol else 80
    if path == "/fapi/v1/openOrders":
        return 1 if has_symbol else 40
    return WEIGHTS.get((method, path), 1)


@dataclass(slots=True)
class RateLimits:
    """Weight limits per minute per family, and the ban that follows repeated 429s."""

    per_minute: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    ban_after: int = 3
    ban_ms: int = 120_000


@dataclass(slots=True)
class _Window:
    minute: int = -1
    used: int = 0


class RateLimiter:
    """Counts weight in fixed one-minute windows; raises the 429 / 418 ``ApiError`` Binance sends."""

    def __init__(self, limits: RateLimits | None = None, now_ms: Callable[[], int] = wall_ms) -> None:
        self.limits = limits or RateLimits()
        self._now = now_ms
        self._windows: dict[str, _Window] = {}
        self._violations = 0
        self.banned_until = 0

    def used(self, fam: str) -> int:
        window = self._windows.get(fam)
        return window.used if window and window.minute == self._now() // MINUTE_MS else 0

    def charge(self, fam: str, weight: int) -> int:
        """Add ``weight``; returns the weight used in this minute, or raises 429 / 418."""
        now = self._now()
        if now < self.banned_until:
            raise self._banned(now)
        window = self._windows.setdefault(fam, _Window())
        minute = now // MINUTE_MS
        if window.minute != minute:
            window.minute, window.used = minute, 0
            self._violations = 0
        limit = self.limits.per_minute.get(fam, DEFAULT_LIMITS.get(fam, 6000))
        window.used += weight
        if window.used > limit:
            self._violations += 1
            if self._violations > self.limits.ban_after:
                self.banned_until = now + self.limits.ban_ms
                raise self._banned(now)
            raise ApiError(
                -1003,
                f"Too many requests; current limit of IP(127.0.0.1) is {limit} request weight per 1 MINUTE. "
                "Please use the websocket for live updates to avoid polling the API.",
                429,
                retry_after_s=seconds_until((minute + 1) * MINUTE_MS, now),  # the window's end
            )
        return window.used

    def _banned(self, now: int) -> ApiError:
        return ApiError(
            -1003,
            f"Way too many requests; IP(127.0.0.1) banned until {self.banned_until}. "
            "Please use the websocket for live updates to avoid bans.",
            418,
            retry_after_s=seconds_until(self.banned_until, now),
        )


def seconds_until(end_ms: int, now_ms: int) -> int:
    """Whole seconds, rounded up, as Binance's Retry-After header counts them."""
    return max(1, -(-(end_ms - now_ms) // 1000))


def retry_after_header(status: int, msg: str, now_ms: int) -> dict[str, str]:
    """Retry-After for an injected 429 (the minute window's end) or 418 (the ban its message names)."""
    ban = _BANNED_UNTIL.search(msg) if status == 418 else None
    end = int(ban.group(1)) if ban else (now_ms // MINUTE_MS + 1) * MINUTE_MS
    return {"Retry-After": str(seconds_until(end, now_ms))}
