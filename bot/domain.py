"""Small shared vocabulary: money is Decimal, time is UTC epoch milliseconds.

Everything that crosses a module boundary (sim, venues, ledger, strategy) uses these names so that a
quantity rounded for one market is never silently re-rounded differently by another.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_UP, Decimal

HOUR_MS = 3_600_000
MINUTE_MS = 60_000
DAY_MS = 24 * HOUR_MS

ZERO = Decimal(0)


def funding_interval_hours(last_ms: int, next_ms: int) -> int | None:
    """Whole hours between two funding settlements, else None: the one rule for an interval from spacing.

    Binance stamps settlements a few ms late (``1700006400003``), so the gap is rounded to the hour when
    within a minute of one; a gap off the hour grid, not positive or over a day is no interval."""
    delta = next_ms - last_ms
    hours = round(delta / HOUR_MS)
    if 1 <= hours <= 24 and abs(delta - hours * HOUR_MS) < MINUTE_MS:
        return hours
    return None


class Leg(enum.StrEnum):
    """Which side of the hedge a record belongs to."""

    SPOT = "spot"
    PERP = "perp"


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"


class PairState(enum.StrEnum):
    """Life cycle of one hedged spot+perp position."""

    OPENING = "opening"
    OPEN = "open"
    REBALANCING = "rebalancing"
    CLOSING = "closing"
    CLOSED = "closed"
    QUARANTINED = "quarantined"


def to_decimal(value: object) -> Decimal:
    """Decimal from str/int/Decimal (floats go through repr so 0.1 stays 0.1)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Largest multiple of ``step`` that is <= ``value`` (exchange lot rounding)."""
    if step <= 0:
        raise ValueError(f"step must be positive, got {step}")
    return (value / step).to_integral_value(rounding=ROUND_DOWN) * step


def ceil_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Smallest multiple of ``step`` that is >= ``value``."""
    if step <= 0:
        raise ValueError(f"step must be positive, got {step}")
    return (value / step).to_integral_value(rounding=ROUND_UP) * step


def _places(d: Decimal) -> int:
    exp = d.as_tuple().exponent
    if not isinstance(exp, int):
        raise ValueError(f"step must be finite, got {d}")
    return max(0, -exp)


def common_step(a: Decimal, b: Decimal) -> Decimal:
    """Smallest positive quantity that is a multiple of both steps (exact lcm of two decimals): the
    step on which a spot leg and a perp leg can hold the same base quantity."""
    if a <= 0 or b <= 0:
        raise ValueError(f"steps must be positive, got {a} and {b}")
    k = max(_places(a), _places(b))
    return Decimal(math.lcm(int(a.scaleb(k)), int(b.scaleb(k)))).scaleb(-k)


def legs_equal(spot: Decimal, short: Decimal, step: Decimal, spot_fee_in_base: Decimal) -> bool:
    """The two legs hold the same base quantity as far as the venue lets them: within one common step,
    plus the base-asset fee a spot buy may have left over (``spot_fee_in_base`` of the short)."""
    return abs(spot - short) < step + short * spot_fee_in_base


@dataclass(frozen=True, slots=True)
class MarketFilters:
    """Binance-style trading filters of one market (spot or perp)."""

    symbol: str  # unified ccxt symbol, e.g. "BTC/USDT" or "BTC/USDT:USDT"
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    min_notional: Decimal
    max_market_qty: Decimal | None = None  # MARKET_LOT_SIZE maxQty: the largest market order (None: no cap)

    def accepts(self, qty: Decimal, price: Decimal) -> bool:
        """True when a market order of ``qty`` at ``price`` passes the lot, market lot and notional filters."""
        return (
            qty >= self.min_qty
            and floor_to_step(qty, self.step_size) == qty
            and qty * price >= self.min_notional
            and (self.max_market_qty is None or qty <= self.max_market_qty)
        )


QUOTES = ("USDT", "USDC", "FDUSD", "BUSD")  # quote assets an exchange id like BTCUSDT may end with


def split_exchange_id(binance_id: str) -> tuple[str, str]:
    """'BTCUSDT' -> ('BTC', 'USDT'): the one rule for reading a Binance market id (any of ``QUOTES``).

    Raises ValueError naming the id when it ends in no known quote asset."""
    for quote in QUOTES:
        if binance_id.endswith(quote) and len(binance_id) > len(quote):
            return binance_id[: -len(quote)], quote
    raise ValueError(f"{binance_id!r} is not a Binance market id ending in one of {', '.join(QUOTES)}")


def unified_symbol(binance_id: str) -> str:
    """'BTCUSDT' -> 'BTC/USDT' (the spot symbol; its perp is ``perp_symbol`` of it)."""
    base, quote = split_exchange_id(binance_id)
    return f"{base}/{quote}"


def parse_pair_symbol(text: str) -> str:
    """What an operator types for a pair -> 'BTC/USDT': 'BTC/USDT', 'btc/usdt', 'BTCUSDT', 'BTC/USDT:USDT'."""
    t = text.strip().upper().split(":")[0]
    if "/" in t:
        base, _, quote = t.partition("/")
    else:
        try:
            base, quote = split_exchange_id(t)
        except ValueError:
            base = quote = ""
    if not (base.isalnum() and quote.isalnum()):
        raise ValueError(f"{text!r} is not a pair; write it as BTC/USDT or BTCUSDT")
    return f"{base}/{quote}"


def perp_symbol(spot_symbol: str) -> str:
    """'BTC/USDT' -> 'BTC/USDT:USDT' (the linear perpetual of the same coin)."""
    base, quote = spot_symbol.split("/")
    return f"{base}/{quote}:{quote}"


def spot_symbol(perp: str) -> str:
    """'BTC/USDT:USDT' -> 'BTC/USDT'."""
    return perp.split(":")[0]


def exchange_id(symbol: str) -> str:
    """'BTC/USDT', 'BTC/USDT:USDT' or 'BTCUSDT' -> 'BTCUSDT' (Binance market id)."""
    return symbol.split(":")[0].replace("/", "").upper()
