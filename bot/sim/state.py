"""Shared state of the simulated exchange and the record indexes every part of it reads.

``SimExchange`` (bot/sim/exchange.py) is assembled from layers, each in its own module and each using
only the layers below it: ``SimState`` (this module: configuration, wallets, ids, listeners, the order,
trade and income indexes) -> ``MarketView`` (prices, filters, books, market data) -> ``AccountDesk``
(wallets, positions, margin figures, funding settlement) -> ``OrderDesk`` (placement, matching, fills)
and ``TransferDesk`` (wallet transfers) -> ``LiquidationDesk`` -> ``SimExchange`` (time).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from bot.domain import to_decimal
from bot.sim.book import BookConfig, Level
from bot.sim.clock import Clock
from bot.sim.futures import FuturesWallet
from bot.sim.listing import Listing
from bot.sim.markets import Bracket, MarketSpec
from bot.sim.records import IncomeRecord, MarginAdjustment, SimEvent, SimOrder, SimTrade, TransferRecord
from bot.sim.source import MarketDataSource
from bot.sim.wallet import SpotWallet

D = Decimal
ZERO = D(0)
PX_Q = D("0.00000001")

_SPOT_FEE = D("0.001")
_PERP_MAKER_FEE = D("0.0002")
_PERP_TAKER_FEE = D("0.0005")
_MIN_TRANSFER = D(1)
_BNB_DISCOUNT = D("0.75")  # Binance: fees paid in BNB cost 75% of the standard commission


@dataclass(frozen=True)
class SimConfig:
    """Fees, book shape, filters and margin parameters. Defaults follow Binance's regular tier."""

    spot_maker_fee: Decimal = _SPOT_FEE
    spot_taker_fee: Decimal = _SPOT_FEE
    perp_maker_fee: Decimal = _PERP_MAKER_FEE
    perp_taker_fee: Decimal = _PERP_TAKER_FEE
    spot_fee_in_quote: bool = False  # Binance charges spot buys in the base asset (no BNB)
    spot_bnb_burn: bool = False  # the account's spotBNBBurn at start (bot.sim.fees; POST /sapi/v1/bnbBurn)
    bnb_discount: Decimal = _BNB_DISCOUNT  # multiplier on the standard spot commission paid in BNB
    book: BookConfig = field(default_factory=BookConfig)
    book_overrides: dict[str, BookConfig] = field(default_factory=dict)
    specs: dict[tuple[str, str], MarketSpec] = field(default_factory=dict)
    brackets: dict[str, tuple[Bracket, ...]] = field(default_factory=dict)
    default_leverage: int = 20
    # clearance fee on the liquidated notional; None: the symbol's published liquidationFee (exchangeInfo)
    liquidation_fee_rate: Decimal | None = None
    min_transfer: Decimal = _MIN_TRANSFER  # smallest transfer of a dollar asset (about 1 USDT)


Listener = Callable[[SimEvent], None]


class SimState:
    """Everything the layers share. Time moves only through ``step`` (defined by ``SimExchange``)."""

    def __init__(
        self,
        source: MarketDataSource,
        clock: Clock,
        config: SimConfig | None = None,
        symbols: list[str] | None = None,
        balances: dict[str, Decimal] | None = None,
        futures_balances: dict[str, Decimal] | None = None,
    ) -> None:
        self.source = source
        self.clock = clock
        self.config = config or SimConfig()
        self.bnb_burn = self.config.spot_bnb_burn  # spotBNBBurn: spot fees paid in BNB (bot.sim.fees)
        self.listings: dict[str, Listing] = {}  # exchangeInfo status changes (bot.sim.listing)
        self.symbols = tuple(symbols or source.symbols)
        self._now = clock.now_ms()
        self._ids = itertools.count(1000)
        self._update_ids = itertools.count(1)
        self.spot = SpotWallet(
            {"USDT": D(100_000)} if balances is None else {k: to_decimal(v) for k, v in balances.items()}
        )
        self.futures = FuturesWallet()
        for asset, amount in (futures_balances or {}).items():
            if asset == "USDT":
                self.futures.wallet += to_decimal(amount)
            else:
                self.futures.other_assets[asset] = to_decimal(amount)
        self._listeners: list[Listener] = []
        self._orders: dict[tuple[str, int], SimOrder] = {}
        # Indexes over _orders/_trades/_income so reads cost what they return, not the whole history.
        self._live_orders: dict[tuple[str, int], SimOrder] = {}  # may hold closed ones; pruned on read
        self._by_client: dict[tuple[str, str, str], SimOrder] = {}  # latest order per client id
        self._trades: list[SimTrade] = []
        self._trades_by: dict[tuple[str, str], list[SimTrade]] = {}
        self._income: list[IncomeRecord] = []
        self._income_times: list[int] = []
        self._income_sorted = True  # appended in time order (bisect on start); else scanned
        self._transfers: list[TransferRecord] = []
        self._margin_adjustments: list[MarginAdjustment] = []
        self.coinm: dict[str, Decimal] = {}  # the coin-M futures wallet (separate from USD-M)
        self._shocks: list[tuple[str, int, int, float]] = []
        self._funding_override: dict[str, Decimal] = {}
        self._settled_override: dict[tuple[str, int], Decimal] = {}
        self._partial: list[Decimal] = []
        self._partial_rest: list[Decimal] = []
        self._consumed: dict[tuple[str, str, str], Decimal] = {}
        self._book_ids: dict[tuple[str, str], int] = {}
        self._book_cache: dict[tuple[str, str, str], tuple[Decimal, BookConfig, MarketSpec, tuple[Level, ...]]] = {}
        self._px: dict[tuple[str, str], Decimal | None] = {}
        self._last_good: dict[tuple[str, str], Decimal] = {}
        self._specs: dict[tuple[str, str], MarketSpec] = {}
        self._brackets: dict[str, tuple[Bracket, ...]] = {}

    # ------------------------------------------------------------------ time and listeners
    def now_ms(self) -> int:
        return self._now

    def step(self, now_ms: int | None = None) -> list[SimEvent]:
        raise NotImplementedError  # SimExchange moves time

    def subscribe(self, callback: Listener) -> Callable[[], None]:
        """Register a listener for every event; returns a function that unsubscribes it."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def _catch_up(self) -> None:
        t = self.clock.now_ms()
        if t > self._now:
            self.step(t)

    def _publish(self, events: list[SimEvent]) -> None:
        for ev in events:
            for cb in list(self._listeners):
                cb(ev)

    # ------------------------------------------------------------------ orders
    def _add_order(self, order: SimOrder) -> None:
        key = (order.market, order.order_id)
        self._orders[key] = order
        self._by_client[(order.market, order.symbol, order.client_order_id)] = order
        if order.is_open:
            self._live_orders[key] = order

    def _add_trade(self, trade: SimTrade) -> None:
        self._trades.append(trade)
        self._trades_by.setdefault((trade.market, trade.symbol), []).append(trade)

    def _add_income(self, rec: IncomeRecord) -> None:
        if self._income_times and rec.time_ms < self._income_times[-1]:
            self._income_sorted = False
        self._income.append(rec)
        self._income_times.append(rec.time_ms)

    def _live(self) -> list[SimOrder]:
        """Open orders in placement order (orders never reopen, so closed ones are dropped for good)."""
        closed = [k for k, o in self._live_orders.items() if not o.is_open]
        for k in closed:
            del self._live_orders[k]
        return list(self._live_orders.values())

    def order_history(self, market: str) -> list[SimOrder]:
        """Every order placed on ``market``, open or closed, oldest first (snapshots)."""
        return [o.snapshot() for (m, _), o in self._orders.items() if m == market]

    def has_open_orders(self) -> bool:
        return bool(self._live())

    def _open_orders(self, market: str, symbol: str | None = None) -> list[SimOrder]:
        return [o for o in self._live() if o.market == market and (symbol is None or o.symbol == symbol)]
