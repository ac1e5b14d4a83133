"""Per-symbol view shared by the carry strategy and the baselines: forecast, filters, caps, economics.

Also fixes the Decimal context every strategy evaluates under, so results never depend on the caller's
thread-local context (determinism).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Context, Decimal

from bot.domain import ZERO
from strategies.base import Economics, MarketSnapshot, PairView, Snapshot
from strategies.economics import pair_economics
from strategies.forecast import FundingForecast, forecast_funding
from strategies.params import CarryParams
from strategies.sizing import SizingFilters, capital_cap_qty, capital_used, liquidity_cap_qty

DECIMAL_CONTEXT = Context(prec=50, rounding=ROUND_HALF_EVEN)
BPS = Decimal(10_000)


@dataclass(frozen=True, slots=True)
class SymbolAnalysis:
    market: MarketSnapshot
    forecast: FundingForecast
    filters: SizingFilters
    per_symbol_cap_qty: Decimal  # from max_per_symbol_fraction of capital and the operator's pair limit
    liquidity_cap_qty: Decimal | None
    params: CarryParams
    now_ms: int

    @property
    def cap_qty(self) -> Decimal:
        """Largest pair quantity before the total budget: per-symbol and liquidity caps (unrounded)."""
        if self.liquidity_cap_qty is None:
            return self.per_symbol_cap_qty
        return min(self.per_symbol_cap_qty, self.liquidity_cap_qty)

    def economics(self, qty: Decimal) -> Economics:
        return pair_economics(self.market.spot, self.market.perp, qty, self.forecast, self.params)

    def capital_price(self) -> Decimal:
        """Price used to charge capital: the spot ask (what buying the spot leg costs)."""
        return self.market.spot.ask

    @property
    def ms_to_next(self) -> int:
        return self.forecast.next_settlement_ms - self.now_ms

    @property
    def ms_since_last(self) -> int:
        return self.now_ms - self.forecast.last_settlement_ms

    def inputs(self, pair: PairView | None = None) -> dict[str, str]:
        m = self.market
        f = self.forecast
        basis_bps = (m.perp.mid - m.spot.mid) / m.spot.mid * BPS
        out = {
            "spot_symbol": m.symbol,
            "perp_symbol": m.perp_symbol,
            "last_rate": str(m.funding_rate),
            "predicted_rate": str(m.predicted_rate),
            "interval_hours": str(m.interval_hours),
            "next_funding_ms": str(f.next_settlement_ms),
            "minutes_to_next": str(self.ms_to_next // 60_000),
            "minutes_since_last": str(self.ms_since_last // 60_000),
            "history_points": str(len(m.history)),
            "history_per_hour": "" if f.history_per_hour is None else _fmt(f.history_per_hour),
            "predicted_per_hour": _fmt(f.predicted_per_hour),
            "later_per_hour": _fmt(f.later_per_hour),
            "settlements_in_horizon": str(f.settlements),
            "forecast_apr": _fmt(f.apr),
            "spot_bid": str(m.spot.bid),
            "spot_ask": str(m.spot.ask),
            "perp_bid": str(m.perp.bid),
            "perp_ask": str(m.perp.ask),
            "basis_bps": _fmt(basis_bps),
            "common_step": str(self.filters.step),
            "min_pair_qty": str(self.filters.min_qty()),
            "per_symbol_cap_qty": _fmt(self.per_symbol_cap_qty),
            "liquidity_cap_qty": "" if self.liquidity_cap_qty is None else _fmt(self.liquidity_cap_qty),
        }
        if pair is not None:
            out.update(pair_state=pair.state.value, spot_qty=str(pair.spot_qty), perp_qty=str(pair.perp_qty))
        return out


def _fmt(value: Decimal) -> str:
    """Short, stable text for a ratio in the reason record (about 12 significant digits)."""
    if value == 0 or value.adjusted() > 30:
        return str(value)
    exp = min(0, value.adjusted() - 11)
    return format(value.quantize(Decimal(1).scaleb(exp)).normalize(), "f")


def analyse(market: MarketSnapshot, snapshot: Snapshot, params: CarryParams) -> SymbolAnalysis:
    filters = SizingFilters.of(market.spot, market.perp)
    cap = capital_cap_qty(
        snapshot.capital * params.max_per_symbol_fraction, market.spot.ask, params.capital_per_notional
    )
    if snapshot.limits.max_pair_notional is not None:
        cap = min(cap, snapshot.limits.max_pair_notional / market.perp.mid)
    liquidity = liquidity_cap_qty(market.spot, market.perp, params.liquidity_fraction, params.max_slippage_bps)
    # MARKET_LOT_SIZE: the largest market order. A pair never holds more than one such order, so it can
    # always be closed (or unwound) in one order per leg; grown in steps past it, a pair could not be
    # exited (Binance: -4005 on the perp's close) and the executor would buy the sold spot back each hour.
    largest_order = filters.max_order_qty()
    if largest_order is not None:
        cap = min(cap, largest_order)
    return SymbolAnalysis(
        market=market,
        forecast=forecast_funding(market, snapshot.now_ms, params),
        filters=filters,
        per_symbol_cap_qty=max(cap, ZERO),
        liquidity_cap_qty=liquidity,
        params=params,
        now_ms=snapshot.now_ms,
    )


class Budget:
    """What is left of the total capital, operator notional limit and symbol slots during one run."""

    def __init__(self, snapshot: Snapshot, params: CarryParams) -> None:
        self.capital = snapshot.capital * params.max_total_fraction
        self.notional = snapshot.limits.max_total_notional
        self.slots = params.max_symbols
        self.per_notional = params.capital_per_notional

    def cap_qty(self, a: SymbolAnalysis) -> Decimal:
        qty = capital_cap_qty(self.capital, a.capital_price(), self.per_notional)
        if self.notional is not None:
            qty = min(qty, self.notional / a.market.perp.mid)
        return max(qty, ZERO)

    def take(self, a: SymbolAnalysis, qty: Decimal) -> None:
        self.capital -= capital_used(qty, a.capital_price(), self.per_notional)
        if self.notional is not None:
            self.notional -= qty * a.market.perp.mid
        self.slots -= 1

    def give(self, a: SymbolAnalysis, qty: Decimal) -> None:
        """Undo ``take`` (a reservation handed back to the pair that made it)."""
        self.capital += capital_used(qty, a.capital_price(), self.per_notional)
        if self.notional is not None:
            self.notional += qty * a.market.perp.mid
        self.slots += 1
