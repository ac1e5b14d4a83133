"""``Recorder``: the ledger port every part of the bot writes facts through and reads state from.

Two implementations: ``bot.ledger.repository.Ledger`` (SQLAlchemy async, SQLite or Postgres; the
daemon, live and dry-run) and ``bot.ledger.memory.MemoryLedger`` (a backtest's, in memory and flushed
to its SQLite file in bulk). Both keep the same rules (idempotent facts on their natural keys, the same
upserts, the same ids) and return the same model objects; ``tests/ledger/test_memory.py`` runs one
backtest through each and compares every table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from bot.domain import ZERO, Leg, PairState, Side
from bot.ledger.models import (
    ACCOUNT,
    BalanceSnapshot,
    Control,
    ControlKind,
    Event,
    EventKind,
    Fill,
    FundingPayment,
    FundingRate,
    FundingSource,
    Intent,
    IntentKind,
    IntentStatus,
    Order,
    Pair,
    RateKind,
    Transfer,
    TransferStatus,
    Wallet,
)
from bot.ledger.outage import OutageTracker
from bot.ledger.repository import AssetBalance, EventRecord, FundingRecord, IntentRecord


@runtime_checkable
class Recorder(Protocol):
    """What the engine, executor, treasury, reconciler and reports call on a ledger (see ``Ledger``
    for each method's rules)."""

    outages: OutageTracker

    async def close(self) -> None: ...

    async def upsert_pair(
        self,
        *,
        venue: str,
        symbol: str,
        now_ms: int,
        perp_symbol: str | None = None,
        state: PairState | None = None,
        target_qty: Decimal | None = None,
        spot_qty: Decimal | None = None,
        perp_qty: Decimal | None = None,
        entry_spot_price: Decimal | None = None,
        entry_perp_price: Decimal | None = None,
        entry_basis: Decimal | None = None,
        note: str | None = None,
        adopted_spot_qty: Decimal | None = None,
        adopted_perp_qty: Decimal | None = None,
    ) -> Pair: ...

    async def get_pair(self, pair_id: int) -> Pair | None: ...

    async def active_pair(self, venue: str, symbol: str) -> Pair | None: ...

    async def list_pairs(
        self, states: Iterable[PairState] | None = None, *, venue: str | None = None
    ) -> list[Pair]: ...

    async def set_pair_state(self, pair_id: int, state: PairState, *, now_ms: int, note: str | None = None) -> Pair: ...

    async def create_intent(
        self,
        kind: IntentKind,
        client_id: str,
        *,
        now_ms: int,
        payload: Mapping[str, Any] | None = None,
        pair_id: int | None = None,
    ) -> Intent: ...

    async def record_order_outcome(
        self,
        order: Mapping[str, Any],
        events: Sequence[EventRecord],
        fills: Sequence[tuple[Mapping[str, Any], EventRecord]],
        intent: tuple[str, IntentStatus, int] | None = None,
    ) -> list[bool]: ...

    async def write_ahead(
        self,
        intents: Sequence[IntentRecord],
        events: Sequence[EventRecord] = (),
        transfers: Sequence[Mapping[str, Any]] = (),
    ) -> list[tuple[Intent, bool]]: ...

    async def settle_transfer(
        self,
        client_id: str,
        *,
        now_ms: int,
        status: TransferStatus,
        intent_status: IntentStatus,
        venue_tran_id: str | None = None,
        error: str | None = None,
        events: Sequence[EventRecord] = (),
    ) -> None: ...

    async def get_intent(self, client_id: str) -> Intent | None: ...

    async def set_intent_status(
        self,
        client_id: str,
        status: IntentStatus,
        *,
        now_ms: int,
        error: str | None = None,
        count_attempt: bool = False,
    ) -> Intent: ...

    async def pair_client_ids(self, pair_id: int) -> list[str]: ...

    async def list_intents(
        self, kinds: Iterable[IntentKind] | None = None, statuses: Iterable[IntentStatus] | None = None
    ) -> list[Intent]: ...

    async def open_intents(self, kinds: Iterable[IntentKind] | None = None) -> list[Intent]: ...

    async def record_order(
        self,
        *,
        client_order_id: str,
        venue: str,
        symbol: str,
        leg: Leg,
        side: Side,
        type: str,
        quantity: Decimal,
        now_ms: int,
        status: str = "open",
        price: Decimal | None = None,
        filled_qty: Decimal = ZERO,
        avg_price: Decimal | None = None,
        venue_order_id: str | None = None,
        pair_id: int | None = None,
        reduce_only: bool = False,
    ) -> Order: ...

    async def get_order(self, client_order_id: str) -> Order | None: ...

    async def list_orders(
        self,
        *,
        symbol: str | None = None,
        pair_id: int | None = None,
        statuses: Iterable[str] | None = None,
        since_ms: int | None = None,
        limit: int | None = None,
        venue: str | None = None,
    ) -> list[Order]: ...

    async def record_fill(
        self,
        *,
        venue: str,
        market: Leg,
        symbol: str,
        venue_trade_id: str,
        side: Side,
        quantity: Decimal,
        price: Decimal,
        fee: Decimal,
        ts_ms: int,
        fee_asset: str | None = None,
        is_maker: bool | None = None,
        client_order_id: str | None = None,
        venue_order_id: str | None = None,
        pair_id: int | None = None,
    ) -> bool: ...

    async def list_fills(
        self,
        *,
        symbol: str | None = None,
        pair_id: int | None = None,
        client_order_id: str | None = None,
        since_ms: int | None = None,
        limit: int | None = None,
        venue: str | None = None,
    ) -> list[Fill]: ...

    async def record_transfer(
        self,
        *,
        client_id: str,
        venue: str,
        asset: str,
        amount: Decimal,
        from_wallet: Wallet,
        to_wallet: Wallet,
        now_ms: int,
        status: TransferStatus = TransferStatus.PENDING,
        venue_tran_id: str | None = None,
    ) -> bool: ...

    async def update_transfer(
        self,
        client_id: str,
        *,
        now_ms: int,
        status: TransferStatus | None = None,
        venue_tran_id: str | None = None,
        error: str | None = None,
        count_attempt: bool = False,
    ) -> Transfer: ...

    async def get_transfer(self, client_id: str) -> Transfer | None: ...

    async def list_transfers(
        self,
        *,
        statuses: Iterable[TransferStatus] | None = None,
        since_ms: int | None = None,
        limit: int | None = None,
        venue: str | None = None,
    ) -> list[Transfer]: ...

    async def record_funding_payment(
        self,
        *,
        venue: str,
        account: str,
        symbol: str,
        funding_time_ms: int,
        amount: Decimal,
        source: FundingSource,
        now_ms: int,
        rate: Decimal | None = None,
        position_size: Decimal | None = None,
        asset: str = "USDT",
        pair_id: int | None = None,
    ) -> bool: ...

    async def record_funding_rates(self, rates: Sequence[Mapping[str, Any]]) -> None: ...
    async def record_scan(self, rates: Sequence[Mapping[str, Any]], events: Sequence[EventRecord]) -> None: ...
    async def record_funding_payments(self, payments: Sequence[FundingRecord]) -> int: ...

    async def list_funding_payments(
        self,
        symbol: str | None = None,
        since_ms: int | None = None,
        *,
        until_ms: int | None = None,
        pair_id: int | None = None,
        venue: str | None = None,
        limit: int | None = None,
    ) -> list[FundingPayment]: ...

    async def record_funding_rate(
        self,
        *,
        venue: str,
        symbol: str,
        funding_time_ms: int,
        rate: Decimal,
        kind: RateKind,
        observed_ms: int,
        interval_hours: int | None = None,
    ) -> bool: ...

    async def funding_rates(
        self,
        symbol: str,
        *,
        venue: str | None = None,
        kind: RateKind | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int | None = None,
    ) -> list[FundingRate]: ...

    async def record_balance_snapshot(
        self, *, venue: str, wallet: Wallet, ts_ms: int, balances: Mapping[str, AssetBalance]
    ) -> int: ...

    async def record_balance_snapshots(
        self, snapshots: Sequence[tuple[str, Wallet, int, Mapping[str, AssetBalance]]]
    ) -> int: ...

    async def latest_balances(self, venue: str | None = None) -> list[BalanceSnapshot]: ...

    async def controls(self) -> list[Control]: ...

    async def control_history(
        self, kinds: Iterable[ControlKind] | None = None, *, limit: int = 10
    ) -> list[Control]: ...

    async def set_control(
        self,
        kind: ControlKind,
        *,
        now_ms: int,
        source: str,
        symbol: str = ACCOUNT,
        value: Decimal | None = None,
        pair_id: int | None = None,
        reason: str | None = None,
    ) -> tuple[Control, bool]: ...

    async def clear_control(
        self, kind: ControlKind, *, now_ms: int, source: str, symbol: str = ACCOUNT, note: str | None = None
    ) -> Control | None: ...

    async def finish_request(
        self, control: Control | int, *, now_ms: int, source: str, note: str
    ) -> Control | None: ...

    async def add_event(
        self,
        kind: EventKind,
        message: str,
        *,
        ts_ms: int,
        pair_id: int | None = None,
        symbol: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> int: ...

    async def add_events(self, events: Sequence[EventRecord]) -> None: ...

    async def events(
        self,
        *,
        since_ms: int | None = None,
        after_id: int | None = None,
        kinds: Sequence[EventKind] | None = None,
        symbol: str | None = None,
        pair_id: int | None = None,
        limit: int | None = None,
        newest_first: bool = False,
        message_prefix: str | None = None,
    ) -> list[Event]: ...
