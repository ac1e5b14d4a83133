"""Per-symbol trading filters, leverage brackets and funding parameters: Binance's own, from the checked-in
snapshot ``bot/sim/data/binance_markets.json`` (sources in ``bot/sim/data/BINANCE_MARKETS.md``), with
generic ones where no source covers a market."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import lru_cache
from importlib import resources
from typing import Any

from bot.domain import MarketFilters, split_exchange_id
from bot.sim.premium import FundingRule

D = Decimal
MARKETS = ("spot", "perp")


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """Filters of one market. ``market`` is "spot" or "perp"; ``symbol`` the Binance id.

    The fields after ``max_price`` carry Binance's other filters: MARKET_LOT_SIZE (``market_max_qty``;
    None: LOT_SIZE's), PERCENT_PRICE (perp: one pair of multipliers of the mark price for both sides;
    spot PERCENT_PRICE_BY_SIDE: ``bid_*`` for buys, ``ask_*`` for sells), spot NOTIONAL's
    ``applyMinToMarket``, the perp's ``liquidationFee``, and where the values come from."""

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
    market_max_qty: Decimal | None = None
    bid_up: Decimal | None = None
    bid_down: Decimal | None = None
    ask_up: Decimal | None = None
    ask_down: Decimal | None = None
    min_notional_on_market: bool = True
    liquidation_fee: Decimal | None = None
    source: str = "generic"

    @property
    def unified(self) -> str:
        spot = f"{self.base}/{self.quote}"
        return spot if self.market == "spot" else f"{spot}:{self.quote}"

    @property
    def market_order_max_qty(self) -> Decimal:
        return self.market_max_qty if self.market_max_qty is not None else self.max_qty

    def filters(self) -> MarketFilters:
        cap = self.market_order_max_qty
        return MarketFilters(
            self.unified,
            self.tick_size.normalize(),
            self.step_size.normalize(),
            self.min_qty.normalize(),
            self.min_notional.normalize(),
            cap.normalize() if self.market_max_qty is not None else None,
        )


# Generic filters for markets no source covers (symbol: spot tick, spot step, perp tick, perp step).
# Min qty = step; min notional 5 USDT, Binance's smallest.
_GENERIC_STEPS: dict[str, tuple[str, str, str, str]] = {
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
GENERIC_LIQUIDATION_FEE = D("0.0125")  # the most common liquidationFee in the snapshot


def _pow10(exp: int) -> Decimal:
    return D(1).scaleb(exp)


def _generic_spec(market: str, symbol: str, reference_price: float | None) -> MarketSpec:
    base, quote = split_exchange_id(symbol)
    if symbol in _GENERIC_STEPS:
        st, ss, pt, ps = _GENERIC_STEPS[symbol]
        tick, step = (D(st), D(ss)) if market == "spot" else (D(pt), D(ps))
    else:
        mag = math.floor(math.log10(reference_price)) if reference_price and reference_price > 0 else 2
        tick = _pow10(mag - 5)
        step = _pow10(min(-mag - 1, 0))
    max_qty = D(9_000_000) if market == "spot" else D(10_000_000)
    liq = GENERIC_LIQUIDATION_FEE if market == "perp" else None
    return MarketSpec(
        market, symbol, base, quote, tick, step, step, max_qty, MIN_NOTIONAL, tick, D(10_000_000), liquidation_fee=liq
    )


def _snapshot_spec(market: str, symbol: str, row: dict[str, Any]) -> MarketSpec:
    f = row["filters"]
    base, quote = split_exchange_id(symbol)
    price, lot = f["PRICE_FILTER"], f["LOT_SIZE"]
    mlot = f.get("MARKET_LOT_SIZE", {})
    market_max = D(mlot["maxQty"]) if mlot.get("maxQty") and D(mlot["maxQty"]) > 0 else None
    if market == "perp":
        notional = D(f["MIN_NOTIONAL"]["notional"])
        pct = f.get("PERCENT_PRICE", {})
        up = D(pct["multiplierUp"]) if pct else None
        down = D(pct["multiplierDown"]) if pct else None
        bid_up, bid_down, ask_up, ask_down = up, down, up, down
        on_market = True
        liq = D(row["liquidationFee"]) if row.get("liquidationFee") else GENERIC_LIQUIDATION_FEE
    else:
        nf = f.get("NOTIONAL") or f.get("MIN_NOTIONAL") or {}
        notional = D(nf.get("minNotional", MIN_NOTIONAL))
        on_market = bool(nf.get("applyMinToMarket", True))
        side = f.get("PERCENT_PRICE_BY_SIDE", {})
        bid_up, bid_down = _opt(side.get("bidMultiplierUp")), _opt(side.get("bidMultiplierDown"))
        ask_up, ask_down = _opt(side.get("askMultiplierUp")), _opt(side.get("askMultiplierDown"))
        liq = None
    step = D(lot["stepSize"])
    return MarketSpec(
        market,
        symbol,
        base,
        quote,
        D(price["tickSize"]),
        step,
        D(lot["minQty"]),
        D(lot["maxQty"]),
        notional,
        D(price["minPrice"]),
        D(price["maxPrice"]),
        market_max,
        bid_up,
        bid_down,
        ask_up,
        ask_down,
        on_market,
        liq,
        f"snapshot {row.get('source', '?')}",
    )


def _opt(text: str | None) -> Decimal | None:
    return None if text in (None, "") else D(text)


def default_spec(market: str, symbol: str, reference_price: float | None = None) -> MarketSpec:
    """Binance's filters from the checked-in snapshot (bot/sim/data/binance_markets.json) where a source
    gives them; otherwise generic filters scaled to ``reference_price`` (``source == "generic"``)."""
    if market not in MARKETS:
        raise ValueError(f"market must be one of {MARKETS}, got {market!r}")
    row = snapshot()[market].get(symbol)
    if row is None:
        return _generic_spec(market, symbol, reference_price)
    return _for_the_price(_snapshot_spec(market, symbol, row), reference_price)


def _for_the_price(spec: MarketSpec, reference_price: float | None) -> MarketSpec:
    """The snapshot's tick where it suits the price of the simulated time, else one Binance would have used.

    The snapshot describes 2024; replayed years earlier a coin may trade 30x lower (ADAUSDT at 0.03 in
    2020 against its 0.0001 tick: 33 bps a tick, every fill paying it). Binance re-ticks symbols as their
    price moves, keeping a tick between 1 and 10 bps of the price, so a tick coarser than
    ``10**(floor(log10(price)) - 3)`` is scaled down to that (and the source says so)."""
    if not reference_price or reference_price <= 0:
        return spec
    cap = _pow10(math.floor(math.log10(reference_price)) - 3)
    if spec.tick_size <= cap:
        return spec
    return replace(
        spec,
        tick_size=cap,
        min_price=min(spec.min_price, cap),
        source=f"{spec.source}; tick scaled to {format(cap, 'f')} for a price of {reference_price:g}",
    )


@lru_cache(maxsize=1)
def snapshot() -> dict[str, Any]:
    """The checked-in snapshot of Binance's exchangeInfo, leverageBracket and funding parameters."""
    with resources.files("bot.sim.data").joinpath("binance_markets.json").open("r", encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


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
    """The symbol's leverage brackets from the snapshot; the generic tables where none is known."""
    row = snapshot()["brackets"].get(symbol)
    if row is None:
        return MAJOR_BRACKETS if symbol in ("BTCUSDT", "ETHUSDT") else ALT_BRACKETS
    return tuple(
        Bracket(int(b), int(lev), D(floor), D(cap), D(mmr), D(cum)) for b, lev, floor, cap, mmr, cum in row["brackets"]
    )


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
    """The contract's funding parameters (snapshot ``funding``): the interest component (0 for BNBUSDT),
    and the cap and floor: the adjusted ones fundingInfo would list, else Binance's default, 0.75 x the
    maintenance margin ratio of the first leverage bracket (BTCUSDT +-0.3%)."""
    f = snapshot()["funding"]
    interest = float(f["interest_8h"].get(symbol, f["interest_8h"]["default"]))
    adjusted = f["adjusted"].get(symbol)
    if adjusted is not None:
        return FundingRule(interest, float(adjusted["cap"]), float(adjusted["floor"]))
    cap = float(default_brackets(symbol)[0].maint_margin_ratio) * float(f["default_cap_multiplier"])
    return FundingRule(interest, cap, -cap)


def adjusted_funding(symbol: str) -> tuple[Decimal, Decimal] | None:
    """(cap, floor) when the symbol's funding cap was adjusted (a fundingInfo row), else None."""
    row = snapshot()["funding"]["adjusted"].get(symbol)
    return None if row is None else (D(row["cap"]), D(row["floor"]))
