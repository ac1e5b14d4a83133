"""SimExchange: a deterministic Binance spot + USD-M simulator over a MarketDataSource.

Time only moves through ``step`` (or implicitly to ``clock.now_ms()`` before each call). A step splits
at every funding settlement instant it passes, so for each sub-interval, in time order: prices are
updated, resting limit orders that the price path traded through (a tick beyond the limit; a touch is
no fill) are filled at their limit with the maker fee, liquidations are checked at the worst mark of the
interval, then funding is settled on the positions held at the instant.

The rules live in one module each (see bot/sim/state.py for the layering): prices.py (market data,
filters, books), accounts.py (wallets, positions, margin, funding), orders.py (placement and matching),
liquidation.py, transfers.py. This class only moves time and holds the fault hooks.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from decimal import Decimal

from bot.domain import to_decimal
from bot.sim.clock import Clock
from bot.sim.futures import FuturesWallet, SimPosition
from bot.sim.liquidation import LiquidationDesk
from bot.sim.markets import default_brackets, default_spec
from bot.sim.records import SimEvent, SimOrder, SimTrade, TransferRecord
from bot.sim.source import MarketDataSource
from bot.sim.state import ZERO, Listener, SimConfig
from bot.sim.transfers import TRANSFER_KINDS, TransferDesk
from bot.sim.wallet import SpotWallet

__all__ = ["TRANSFER_KINDS", "Listener", "SimConfig", "SimExchange"]


class SimExchange(LiquidationDesk, TransferDesk):
    def __init__(
        self,
        source: MarketDataSource,
        clock: Clock,
        config: SimConfig | None = None,
        symbols: list[str] | None = None,
        balances: dict[str, Decimal] | None = None,
        futures_balances: dict[str, Decimal] | None = None,
    ) -> None:
        super().__init__(source, clock, config, symbols, balances, futures_balances)
        for s in self.symbols:
            if s not in source.symbols:
                raise ValueError(f"symbol {s} not in the market data source")
            ref = _reference_price(source, s, self._now)
            for market in ("spot", "perp"):
                if source.has(market, s):
                    self._specs[(market, s)] = self.config.specs.get((market, s)) or default_spec(market, s, ref)
            self._brackets[s] = self.config.brackets.get(s) or default_brackets(s)
        self._update_prices()

    # ------------------------------------------------------------------ time
    def step(self, now_ms: int | None = None) -> list[SimEvent]:
        target = self.clock.now_ms() if now_ms is None else int(now_ms)
        if target <= self._now:
            return []
        events: list[SimEvent] = []
        due = sorted(
            (st.ts_ms, st.symbol, st)
            for sym in self.symbols
            for st in self.source.settlements_between(sym, self._now, target)
        )
        for ts, group in itertools.groupby(due, key=lambda x: x[0]):
            if ts > self._now:
                self._advance(ts, events)
            for _, _, st in group:
                self._settle(st, events)
        if target > self._now:
            self._advance(target, events)
        self._publish(events)
        return events

    def _advance(self, t: int, events: list[SimEvent]) -> None:
        prev = self._now
        self._now = t
        self._update_prices()
        self._match_resting(prev, t, events)
        self._check_liquidations(prev, t, events)
        events.append(SimEvent("prices", t, data={"symbols": self.symbols}))

    # ------------------------------------------------------------------ read API (the backtest's fast path)
    def open_positions(self) -> list[SimPosition]:
        """The perp positions with a non-zero amount (live objects: read them, do not change them)."""
        return self.futures.open_positions()

    def futures_wallet_balance(self) -> Decimal:
        """The USDT futures wallet (isolated wallets included), as last settled: no catch-up to the clock."""
        return self.futures.wallet

    def holds_other_futures_assets(self) -> bool:
        """Whether the futures wallet has any asset besides USDT on record (even one moved out to 0)."""
        return bool(self.futures.other_assets)

    # ------------------------------------------------------------------ fault hooks
    def apply_price_shock(self, symbol: str, pct: float, duration_ms: int) -> None:
        """Move spot, perp, mark and index of ``symbol`` by ``pct`` (0.35 = +35 %), ramping linearly
        from now over ``duration_ms``; the shifted level persists afterwards."""
        self._spec("perp", symbol) if ("perp", symbol) in self._specs else self._spec("spot", symbol)
        self._shocks.append((symbol, self._now, max(int(duration_ms), 1), float(pct)))

    def override_funding_rate(self, symbol: str, rate: Decimal | str | float | None) -> None:
        """Settle (and predict) ``rate`` for ``symbol`` from now on; None restores the data's rates."""
        self._spec("perp", symbol)
        if rate is None:
            self._funding_override.pop(symbol, None)
        else:
            self._funding_override[symbol] = to_decimal(rate)

    def force_partial_fill(self, fraction: Decimal | str | float, orders: int = 1) -> None:
        """The next ``orders`` orders fill only ``fraction`` of their quantity when they take."""
        f = to_decimal(fraction)
        if not ZERO <= f <= 1:
            raise ValueError(f"fraction must be in [0, 1], got {f}")
        self._partial.extend([f] * orders)

    def force_partial_rest(self, fraction: Decimal | str | float, fills: int = 1) -> None:
        """The next ``fills`` trade-throughs of resting orders fill only ``fraction`` of what rests (the
        rest keeps resting): a partial maker fill, which the replayed price path alone never produces."""
        f = to_decimal(fraction)
        if not ZERO < f <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {f}")
        self._partial_rest.extend([f] * fills)

    # ------------------------------------------------------------------ restored state
    def restore_account(
        self,
        *,
        spot: dict[str, Decimal],
        futures_wallet: Decimal,
        positions: Sequence[SimPosition] = (),
        orders: Sequence[SimOrder] = (),
        trades: Sequence[SimTrade] = (),
        transfers: Sequence[TransferRecord] = (),
        next_id: int = 0,
    ) -> None:
        """Replace this fresh account with one rebuilt elsewhere (the dry-run's paper account, from the
        ledger): spot balances before open orders lock their reserve, the USDT futures wallet (isolated
        wallets included), one-way positions with their entry, leverage and margin type, the orders and
        trades the account knows (open orders rest again), its transfers, and the next id to hand out.
        Prices, books and the clock are left alone."""
        if self._orders or self._trades or self._transfers:
            raise ValueError("restore_account needs a fresh account (this one has already traded)")
        self.spot = SpotWallet({k: to_decimal(v) for k, v in spot.items() if v})
        self.futures = FuturesWallet(wallet=to_decimal(futures_wallet))
        for pos in positions:
            self._spec("perp", pos.symbol)
            self.futures.positions[pos.symbol] = pos
        for order in orders:
            spec = self._spec(order.market, order.symbol)
            if order.is_open and order.market == "spot" and order.type != "MARKET":
                if order.side == "BUY":  # as placing it reserved (the fee too when it is taken in quote)
                    fee = 1 + self.config.spot_taker_fee if self.config.spot_fee_in_quote else 1
                    asset, order.reserved = spec.quote, order.remaining * order.price * fee
                else:
                    asset, order.reserved = spec.base, order.remaining
                self.spot.lock(asset, order.reserved)
            self._add_order(order)
        for trade in sorted(trades, key=lambda t: (t.time_ms, t.trade_id)):
            self._add_trade(trade)
        self._transfers.extend(sorted(transfers, key=lambda t: (t.time_ms, t.tran_id)))
        self._ids = itertools.count(max(next(self._ids), next_id))


def _reference_price(source: MarketDataSource, symbol: str, now_ms: int) -> float | None:
    """The price filters are chosen for: now, else (a contract not listed yet) its first price."""
    listing = getattr(source, "listing_price", None)
    for kind in ("perp", "spot"):
        p = source.price(kind, symbol, now_ms)
        if p is None and listing is not None:
            p = listing(kind, symbol, now_ms)
        if p is not None:
            return p
    return None
