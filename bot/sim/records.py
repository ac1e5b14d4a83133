"""Plain records the simulator hands out: orders, trades, income, transfers, events and views."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

ZERO = Decimal(0)
OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")


@dataclass
class SimOrder:
    """An order as Binance reports it. ``market`` is "spot" or "perp"; ids are Binance-style ints."""

    market: str
    symbol: str
    order_id: int
    client_order_id: str
    side: str  # BUY / SELL
    type: str  # MARKET / LIMIT / LIMIT_MAKER
    time_in_force: str  # GTC / IOC / FOK / GTX
    orig_qty: Decimal
    price: Decimal  # 0 for market orders
    reduce_only: bool
    time_ms: int
    update_ms: int
    status: str = "NEW"
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    quote_order_qty: Decimal = ZERO
    orig_type: str = ""
    reserved: Decimal = ZERO  # spot funds still locked for the open remainder
    trade_ids: list[int] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def avg_price(self) -> Decimal:
        return self.cum_quote / self.executed_qty if self.executed_qty else ZERO

    def snapshot(self) -> SimOrder:
        return SimOrder(**{**self.__dict__, "trade_ids": list(self.trade_ids)})


@dataclass(frozen=True, slots=True)
class SimTrade:
    market: str
    symbol: str
    trade_id: int
    order_id: int
    side: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    realized_pnl: Decimal
    maker: bool
    time_ms: int


@dataclass(frozen=True, slots=True)
class IncomeRecord:
    """/fapi/v1/income row: TRANSFER, FUNDING_FEE, REALIZED_PNL, COMMISSION, INSURANCE_CLEAR."""

    symbol: str
    income_type: str
    income: Decimal
    asset: str
    time_ms: int
    tran_id: int
    trade_id: str = ""
    info: str = ""


@dataclass(frozen=True, slots=True)
class TransferRecord:
    tran_id: int
    asset: str
    amount: Decimal
    kind: str  # MAIN_UMFUTURE / UMFUTURE_MAIN
    time_ms: int
    status: str = "CONFIRMED"


@dataclass(frozen=True, slots=True)
class MarginAdjustment:
    """/fapi/v1/positionMargin/history row: ``kind`` 1 added to an isolated position, 2 reduced."""

    symbol: str
    kind: int
    amount: Decimal
    asset: str
    time_ms: int
    delta_type: str = "USER_ADJUST"


@dataclass(frozen=True, slots=True)
class SimEvent:
    """Something that happened, for listeners (the emulator turns these into WebSocket pushes).

    kinds: "order" (data: order, trade), "balance" (spot; data: balances, reason),
    "account" (futures; data: reason, wallet, positions), "funding" (data: settlement, payment),
    "liquidation" (data: order, trade, fee), "transfer" (data: record), "prices" (data: symbols).
    """

    kind: str
    time_ms: int
    market: str | None = None
    symbol: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DepthSnapshot:
    symbol: str
    bids: list[tuple[Decimal, Decimal]]
    asks: list[tuple[Decimal, Decimal]]
    update_id: int
    time_ms: int


@dataclass(frozen=True, slots=True)
class Ticker:
    symbol: str
    last: Decimal
    bid: Decimal
    bid_qty: Decimal
    ask: Decimal
    ask_qty: Decimal
    open: Decimal
    high: Decimal
    low: Decimal
    volume: Decimal
    quote_volume: Decimal
    open_ms: int
    close_ms: int


@dataclass(frozen=True, slots=True)
class PremiumIndex:
    symbol: str
    mark_price: Decimal
    index_price: Decimal
    estimated_settle_price: Decimal
    last_funding_rate: Decimal  # the predicted rate of the coming settlement
    interest_rate: Decimal
    next_funding_time: int
    interval_hours: int
    time_ms: int


@dataclass(frozen=True, slots=True)
class FundingRateRow:
    symbol: str
    funding_rate: Decimal
    funding_time: int
    mark_price: Decimal | None


@dataclass(frozen=True, slots=True)
class KlineRow:
    open_ms: int
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal
    close_ms: int


@dataclass(frozen=True, slots=True)
class PositionRisk:
    symbol: str
    position_amt: Decimal
    entry_price: Decimal
    break_even_price: Decimal
    mark_price: Decimal
    unrealized_profit: Decimal
    liquidation_price: Decimal
    leverage: int
    margin_type: str
    isolated_margin: Decimal
    isolated_wallet: Decimal
    notional: Decimal
    initial_margin: Decimal
    maint_margin: Decimal
    update_ms: int


@dataclass(frozen=True, slots=True)
class SpotAccount:
    balances: dict[str, tuple[Decimal, Decimal]]  # asset -> (free, locked)
    update_ms: int


@dataclass(frozen=True, slots=True)
class FuturesAccountInfo:
    total_wallet_balance: Decimal
    total_unrealized_profit: Decimal
    total_margin_balance: Decimal
    total_initial_margin: Decimal
    total_position_initial_margin: Decimal
    total_open_order_initial_margin: Decimal
    total_maint_margin: Decimal
    available_balance: Decimal
    max_withdraw_amount: Decimal
    cross_wallet_balance: Decimal
    cross_unrealized_pnl: Decimal
    margin_ratio: Decimal
    other_assets: dict[str, Decimal]
    positions: list[PositionRisk]
    update_ms: int
