"""Per-symbol trading filters and leverage brackets, with realistic Binance-like defaults."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from bot.domain import MarketFilters
from bot.sim.premium import DEFAULT_INTEREST_8H, FundingRule

D = Decimal
MARKETS = ("spot", "perp")


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """Filters of one market. ``market`` is "spot" or "perp"; ``symbol`` the Binance id."""

    market: str
    symbol: str
    base: str
    quote: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal
    max_qty: Decimal
    min_notional: Decimal
    min_price: Decimal
    max_price: Decimal

    @property
    def unified(self) -> str:
        spot = f"{self.base}/{self.quote}"
        return spot if self.market == "spot" else f"{spot}:{self.quote}"

    def filters(self) -> MarketFilters:
        return MarketFilters(self.unified, self.tick_size, self.step_size, self.min_qty, self.min_notional)


# symbol: (spot tick, spot step, perp tick, perp step). Min qty = step; min notional 5 USDT.
_KNOWN: dict[str, tuple[str, str, str, str]] = {
    "BTCUSDT": ("0.01", "0.00001", "0.1", "0.001"),
    "ETHUSDT": ("0.01", "0.0001", "0.01", "0.001"),
    "SOLUSDT": ("0.01", "0.001", "0.01", "1"),
    "XRPUSDT": ("0.0001", "0.1", "0.0001", "0.1"),
    "DOGEUSDT": ("0.00001", "1", "0.00001", "1"),
    "BNBUSDT": ("0.01", "0.001", "0.01", "0.01"),
    "LTCUSDT": ("0.01", "0.001", "0.01", "0.001"),
    "ADAUSDT": ("0.0001", "0.1", "0.0001", "1"),
    "LINKUSDT": ("0.01", "0.01", "0.001", "0.01"),
    "AVAXUSDT": ("0.01", "0.01", "0.001", "1"),
}
MIN_NOTIONAL = D(5)


def split_symbol(symbol: str) -> tuple[str, str]:
    for quote in ("USDT", "USDC", "FDUSD", "BUSD"):
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return symbol[: -len(quote)], quote
    raise ValueError(f"cannot split symbol {symbol!r} into base and quote")


def _pow10(exp: int) -> Decimal:
    return D(1).scaleb(exp)


def default_spec(market: str, symbol: str, reference_price: float | None = None) -> MarketSpec:
    """Known symbols use Binance's filters; others get filters scaled to ``reference_price``."""
    if market not in MARKETS:
        raise ValueError(f"market must be one of {MARKETS}, got {market!r}")
    base, quote = split_symbol(symbol)
    if symbol in _KNOWN:
        st, ss, pt, ps = _KNOWN[symbol]
        tick, step = (D(st), D(ss)) if market == "spot" else (D(pt), D(ps))
    else:
        mag = math.floor(math.log10(reference_price)) if reference_price and reference_price > 0 else 2
        tick = _pow10(mag - 5)
        step = _pow10(min(-mag - 1, 0))
    max_qty = D(9_000_000) if market == "spot" else D(10_000_000)
    return MarketSpec(market, symbol, base, quote, tick, step, step, max_qty, MIN_NOTIONAL, tick, D(10_000_000))


@dataclass(frozen=True, slots=True)
class Bracket:
    """One notional tier of a USD-M leverage bracket (as /fapi/v1/leverageBracket)."""

    bracket: int
    initial_leverage: int
    notional_floor: Decimal
    notional_cap: Decimal
    maint_margin_ratio: Decimal
    cum: Decimal


def make_brackets(tiers: list[tuple[int, int, int, str]]) -> tuple[Bracket, ...]:
    """Build brackets from (floor, cap, max leverage, mmr); ``cum`` is derived so that maintenance
    margin ``notional * mmr - cum`` is continuous across tiers, as Binance defines it."""
    out: list[Bracket] = []
    cum = D(0)
    prev_mmr = D(0)
    for i, (floor, cap, lev, mmr_text) in enumerate(tiers, start=1):
        mmr = D(mmr_text)
        cum += D(floor) * (mmr - prev_mmr)
        out.append(Bracket(i, lev, D(floor), D(cap), mmr, cum))
        prev_mmr = mmr
    return tuple(out)


MAJOR_BRACKETS = make_brackets(
    [
        (0, 50_000, 125, "0.004"),
        (50_000, 600_000, 100, "0.005"),
        (600_000, 3_000_000, 75, "0.0065"),
        (3_000_000, 12_000_000, 50, "0.01"),
        (12_000_000, 70_000_000, 25, "0.02"),
        (70_000_000, 100_000_000, 20, "0.025"),
        (100_000_000, 230_000_000, 10, "0.05"),
        (230_000_000, 480_000_000, 5, "0.1"),
        (480_000_000, 600_000_000, 4, "0.125"),
        (600_000_000, 800_000_000, 3, "0.15"),
        (800_000_000, 1_200_000_000, 2, "0.25"),
        (1_200_000_000, 1_800_000_000, 1, "0.5"),
    ]
)
ALT_BRACKETS = make_brackets(
    [
        (0, 5_000, 75, "0.01"),
        (5_000, 25_000, 50, "0.015"),
        (25_000, 200_000, 25, "0.02"),
        (200_000, 1_000_000, 20, "0.025"),
        (1_000_000, 2_000_000, 10, "0.05"),
        (2_000_000, 5_000_000, 5, "0.1"),
        (5_000_000, 6_000_000, 4, "0.125"),
        (6_000_000, 10_000_000, 3, "0.15"),
        (10_000_000, 20_000_000, 2, "0.25"),
        (20_000_000, 50_000_000, 1, "0.5"),
    ]
)


def default_brackets(symbol: str) -> tuple[Bracket, ...]:
    return MAJOR_BRACKETS if symbol in ("BTCUSDT", "ETHUSDT") else ALT_BRACKETS


def bracket_for(brackets: tuple[Bracket, ...], notional: Decimal) -> Bracket:
    n = abs(notional)
    for b in brackets:
        if n < b.notional_cap:
            return b
    return brackets[-1]


def maint_margin(brackets: tuple[Bracket, ...], notional: Decimal) -> Decimal:
    """Binance maintenance margin: ``|notional| * maintMarginRatio - cum`` of the notional's tier."""
    b = bracket_for(brackets, notional)
    return abs(notional) * b.maint_margin_ratio - b.cum


def max_notional_for_leverage(brackets: tuple[Bracket, ...], leverage: int) -> Decimal:
    """Largest position notional allowed at ``leverage`` (the cap of the last tier that allows it)."""
    cap = D(0)
    for b in brackets:
        if b.initial_leverage >= leverage:
            cap = b.notional_cap
    return cap


def funding_rule(symbol: str) -> FundingRule:
    """The contract's funding parameters: Binance's default cap and floor are 0.75 x the maintenance margin
    ratio of the first leverage bracket (BTCUSDT +-0.3%, alts at 1% +-0.75%, as the settled history shows);
    BNBUSDT carries no interest component."""
    cap = float(default_brackets(symbol)[0].maint_margin_ratio) * 0.75
    return FundingRule(interest_8h=0.0 if symbol == "BNBUSDT" else DEFAULT_INTEREST_8H, cap=cap, floor=-cap)
