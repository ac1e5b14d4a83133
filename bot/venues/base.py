"""The Venue protocol: everything the engine, execution and treasury ask of an exchange.

Two implementations keep one shape: ``CcxtVenue`` (ccxt async + ccxt.pro, live or against the emulator)
and ``SimVenue`` (the in-process simulation core, for backtests and the dry-run paper account).
Errors are ccxt's exception classes for every implementation (``ccxt.InsufficientFunds``,
``ccxt.NetworkError``...), so callers handle one hierarchy; ``bot.venues.errors.classify`` says which
are retryable. Symbols are unified ccxt symbols; a pair is keyed by its spot symbol (``BTC/USDT``) and
its perp is ``BTC/USDT:USDT``. Money is Decimal, time is UTC epoch ms.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, Protocol, runtime_checkable

from bot.domain import Leg, MarketFilters, Side

Wallet = Literal["spot", "futures"]
OrderType = Literal["market", "limit"]
OrderStatus = Literal["open", "closed", "canceled", "expired", "rejected"]
TransferStatus = Literal["done", "pending", "failed"]  # Binance's CONFIRMED / PENDING / FAILED
MarginMode = Literal["cross", "isolated"]

# Binance's order statuses (spot and USD-M) -> ours: the one map every venue uses (a copy once missed
# EXPIRED_IN_MATCH, leaving a self-trade-prevented order "open" for ever).
BINANCE_ORDER_STATUS: dict[str, OrderStatus] = {
    "NEW": "open",
    "PARTIALLY_FILLED": "open",
    "PENDING_NEW": "open",
    "FILLED": "closed",
    "CANCELED": "canceled",
    "PENDING_CANCEL": "canceled",
    "EXPIRED": "expired",
    "EXPIRED_IN_MATCH": "expired",
    "REJECTED": "rejected",
}


def order_status(binance_status: object) -> OrderStatus:
    """Our status of a Binance order status; one not known yet is "open" (it is read again, never assumed
    filled or gone)."""
    return BINANCE_ORDER_STATUS.get(str(binance_status), "open")


@dataclass(frozen=True, slots=True)
class PairMarkets:
    """The two markets of one carry pair and the perp's current funding interval."""

    spot: MarketFilters
    perp: MarketFilters
    base: str
    quote: str
    funding_interval_hours: int | None = None


@dataclass(frozen=True, slots=True)
class FundingInfo:
    """Premium-index view of one perp: the predicted rate for the next settlement and when it is."""

    symbol: str  # spot symbol of the pair
    predicted_rate: Decimal
    next_funding_ms: int
    interval_hours: int | None
    mark_price: Decimal
    index_price: Decimal
    ts_ms: int


@dataclass(frozen=True, slots=True)
class FundingSettlement:
    """One settled funding rate (public history)."""

    symbol: str
    funding_time_ms: int
    rate: Decimal
    interval_hours: int | None = None
    mark_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OrderBook:
    symbol: str
    leg: Leg
    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]
    ts_ms: int

    @property
    def mid(self) -> Decimal:
        if not self.bids or not self.asks:
            raise ValueError(f"empty book for {self.symbol} {self.leg}")
        return (self.bids[0][0] + self.asks[0][0]) / 2


@dataclass(frozen=True, slots=True)
class WalletBalance:
    wallet: Wallet
    asset: str
    free: Decimal
    used: Decimal
    total: Decimal


@dataclass(frozen=True, slots=True)
class FuturesAccount:
    """USD-M wallet totals in the margin asset (USDT)."""

    wallet_balance: Decimal
    unrealized_pnl: Decimal
    margin_balance: Decimal
    available_balance: Decimal
    max_withdrawable: Decimal
    initial_margin: Decimal
    maint_margin: Decimal
    ts_ms: int


@dataclass(frozen=True, slots=True)
class Position:
    """One-way perp position; ``qty`` is signed (negative = short)."""

    symbol: str  # spot symbol of the pair
    qty: Decimal
    entry_price: Decimal
    mark_price: Decimal
    unrealized_pnl: Decimal
    liquidation_price: Decimal | None
    margin_mode: MarginMode
    maint_margin: Decimal
    ts_ms: int
    isolated_wallet: Decimal = Decimal(0)  # the USDT pinned to an isolated position (0 for cross)
    initial_margin: Decimal = Decimal(0)  # the position's own initial margin at the mark

    @property
    def notional(self) -> Decimal:
        return abs(self.qty) * self.mark_price

    @property
    def isolated_margin(self) -> Decimal:
        """The isolated position's margin balance: its wallet plus its unrealised PnL."""
        return self.isolated_wallet + self.unrealized_pnl


@dataclass(frozen=True, slots=True)
class MarginChange:
    """One change of an isolated position's margin (POST /fapi/v1/positionMargin, or its history)."""

    symbol: str  # spot symbol of the pair
    add: bool  # True: added from the cross wallet; False: returned to it
    amount: Decimal
    ts_ms: int


@dataclass(frozen=True, slots=True)
class OrderRequest:
    client_order_id: str
    symbol: str  # spot symbol of the pair; ``leg`` picks the market
    leg: Leg
    side: Side
    type: OrderType
    qty: Decimal
    price: Decimal | None = None
    reduce_only: bool = False
    post_only: bool = False
    time_in_force: Literal["GTC", "IOC"] = "GTC"


@dataclass(frozen=True, slots=True)
class VenueFill:
    venue_trade_id: str
    venue_order_id: str
    client_order_id: str | None
    symbol: str
    leg: Leg
    side: Side
    qty: Decimal
    price: Decimal
    fee: Decimal
    fee_asset: str
    is_maker: bool
    ts_ms: int


@dataclass(frozen=True, slots=True)
class ForcedClose:
    """The venue closed (part of) a perp position itself: a liquidation (client id ``autoclose-...``) or
    auto-deleveraging (``adl_autoclose``). ``fill`` is its trade when the event carried one."""

    symbol: str  # spot symbol of the pair
    kind: Literal["liquidation", "adl"]
    venue_order_id: str
    client_order_id: str
    side: Side
    qty: Decimal  # filled so far
    price: Decimal | None
    ts_ms: int
    fill: VenueFill | None = None


UserEvent = VenueFill | ForcedClose  # what a user-data stream delivers as it happens


@dataclass(frozen=True, slots=True)
class OrderState:
    client_order_id: str
    venue_order_id: str
    symbol: str
    leg: Leg
    side: Side
    type: OrderType
    qty: Decimal
    price: Decimal | None
    filled: Decimal
    average: Decimal | None
    status: OrderStatus
    reduce_only: bool
    ts_ms: int
    fills: tuple[VenueFill, ...] = field(default_factory=tuple)

    @property
    def remaining(self) -> Decimal:
        return self.qty - self.filled


@dataclass(frozen=True, slots=True)
class TransferResult:
    """A transfer's answer, or one row of the venue's transfer history (``status`` as the venue has it)."""

    tran_id: str
    asset: str
    amount: Decimal
    from_wallet: Wallet
    to_wallet: Wallet
    ts_ms: int
    status: TransferStatus = "done"


@dataclass(frozen=True, slots=True)
class FundingIncome:
    """A funding payment credited or debited to the account (income history)."""

    symbol: str
    amount: Decimal
    asset: str
    funding_time_ms: int
    tran_id: str


@dataclass(frozen=True, slots=True)
class MarkUpdate:
    """A streamed mark-price update (drives the fast collateral and hedge check)."""

    symbol: str
    mark_price: Decimal
    predicted_rate: Decimal | None
    next_funding_ms: int | None
    ts_ms: int


@dataclass(frozen=True, slots=True)
class CommissionRates:
    """The account's commission on one pair's two markets as the venue reports it (fractions of notional).

    Spot: Binance's standard + special + tax commission; ``spot_*_bnb`` is what a fill pays while BNB
    pays the fee (the standard part times the account's BNB discount). Perp: the USD-M rates."""

    symbol: str  # spot symbol of the pair
    spot_maker: Decimal
    spot_taker: Decimal
    perp_maker: Decimal
    perp_taker: Decimal
    spot_maker_bnb: Decimal
    spot_taker_bnb: Decimal


@dataclass(frozen=True, slots=True)
class MarketListing:
    """One pair's listing as the venue's exchangeInfo and 24 h ticker tell it (the universe's filters)."""

    symbol: str  # spot symbol of the pair
    status: str  # the perpetual's status: TRADING, or SETTLING / PRE_DELIVERING / DELIVERING / CLOSE...
    spot_status: str  # the spot market's: TRADING, BREAK, HALT...
    onboard_ms: int | None  # when the perpetual was listed
    delivery_ms: int | None  # a perpetual's delivery (delisting) instant; far future (2100) when none
    quote_volume_24h: Decimal | None  # the perpetual's 24 h quote volume (USDT)


@runtime_checkable
class Venue(Protocol):
    """What the bot needs from an exchange. All methods are coroutines; errors are ccxt exceptions."""

    name: str  # "binance" or "sim"
    account: str  # stable account label for ledger keys (never a secret)

    async def load_markets(self, symbols: list[str]) -> dict[str, PairMarkets]:
        """Filters for both legs of each spot symbol that has a linear perp; others are omitted."""

    async def now_ms(self) -> int:
        """The venue's clock (server time, or the simulated clock)."""

    async def fetch_funding(self, symbols: list[str]) -> dict[str, FundingInfo]: ...

    async def fetch_funding_history(
        self, symbol: str, since_ms: int | None = None, limit: int | None = None
    ) -> list[FundingSettlement]: ...

    async def fetch_order_book(self, symbol: str, leg: Leg, depth: int = 20) -> OrderBook: ...

    async def fetch_balances(self) -> list[WalletBalance]:
        """Balances of both wallets (spot and futures), non-zero assets only."""

    async def fetch_futures_account(self) -> FuturesAccount: ...

    async def fetch_positions(self, symbols: list[str]) -> dict[str, Position]:
        """Open perp positions keyed by spot symbol; flat symbols are absent."""

    async def create_order(self, req: OrderRequest) -> OrderState: ...

    async def fetch_order(self, symbol: str, leg: Leg, client_order_id: str) -> OrderState | None:
        """None when the venue does not know the client id (it was never placed)."""

    async def cancel_order(self, symbol: str, leg: Leg, client_order_id: str) -> OrderState: ...

    async def fetch_open_orders(self, symbol: str, leg: Leg) -> list[OrderState]: ...

    async def fetch_fills(self, symbol: str, leg: Leg, since_ms: int | None = None) -> list[VenueFill]: ...

    async def transfer(self, asset: str, amount: Decimal, from_wallet: Wallet, to_wallet: Wallet) -> TransferResult:
        """Internal transfer between spot and USD-M futures (never Binance's isolated-margin 'future')."""

    async def max_transferable(self, asset: str, from_wallet: Wallet) -> Decimal:
        """What the venue would let move out of ``from_wallet`` now (free spot, or max withdrawable)."""

    async def fetch_transfers(self, since_ms: int, until_ms: int | None = None) -> list[TransferResult]:
        """The venue's spot <-> USD-M transfer history from ``since_ms`` to ``until_ms`` (default: now),
        complete (every page) and oldest first; raises when it cannot be read whole. This is the evidence
        a transfer whose answer was lost is settled by."""

    async def fetch_funding_income(
        self, symbol: str | None = None, since_ms: int | None = None
    ) -> list[FundingIncome]: ...

    async def setup_symbol(self, symbol: str, leverage: int, margin_mode: MarginMode) -> None:
        """Set leverage and margin mode on the perp; idempotent."""

    async def modify_isolated_margin(self, symbol: str, amount: Decimal, add: bool) -> MarginChange:
        """Add USDT from the cross wallet to the perp's isolated position, or return it there."""

    async def fetch_margin_changes(self, symbol: str, since_ms: int | None = None) -> list[MarginChange]:
        """The venue's record of isolated-margin changes of the perp (to settle an unknown outcome)."""

    def watch_marks(self, symbols: list[str]) -> AsyncIterator[MarkUpdate]:
        """Stream of mark-price updates; implementations without a stream may poll."""

    async def fetch_commission(self, symbols: list[str]) -> dict[str, CommissionRates]:
        """The account's own commission rates on both legs of each symbol (``GET /api/v3/account/commission``
        and ``GET /fapi/v1/commissionRate``); a symbol the venue does not list is omitted."""

    async def fetch_listings(self, symbols: list[str] | None = None) -> dict[str, MarketListing]:
        """Fresh listing state of ``symbols`` (None: every USDT-margined perpetual with a USDT spot market),
        with 24 h quote volume; a symbol the venue does not list is omitted."""

    async def fetch_bnb_burn(self) -> bool:
        """Whether spot fees are paid in BNB (``spotBNBBurn``, ``GET /sapi/v1/bnbBurn``)."""

    async def set_bnb_burn(self, on: bool) -> bool:
        """Turn paying spot fees in BNB on or off (``POST /sapi/v1/bnbBurn``); returns the state after."""

    async def close(self) -> None: ...
