"""The rows the ledger inserts, built in one place from ``record_order``/``record_fill``/``record_transfer``'s
arguments, so ``Ledger`` (SQLAlchemy) and ``MemoryLedger`` (a backtest's) store the same shape."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bot.domain import ZERO, Leg, Side
from bot.ledger.models import TransferStatus, Wallet


def order_row(
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
) -> dict[str, Any]:
    """The new ``orders`` row of ``record_order``'s arguments (both recorders insert this shape)."""
    return {
        "client_order_id": client_order_id,
        "venue_order_id": venue_order_id,
        "venue": venue,
        "pair_id": pair_id,
        "leg": leg,
        "symbol": symbol,
        "side": side,
        "type": type,
        "quantity": quantity,
        "price": price,
        "filled_qty": filled_qty,
        "avg_price": avg_price,
        "status": status,
        "reduce_only": reduce_only,
        "created_ms": now_ms,
        "updated_ms": now_ms,
    }


def fill_row(
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
) -> dict[str, Any]:
    """The new ``fills`` row of ``record_fill``'s arguments."""
    return {
        "venue": venue,
        "market": market,
        "symbol": symbol,
        "venue_trade_id": str(venue_trade_id),
        "client_order_id": client_order_id,
        "venue_order_id": venue_order_id,
        "pair_id": pair_id,
        "side": side,
        "quantity": quantity,
        "price": price,
        "fee": fee,
        "fee_asset": fee_asset,
        "is_maker": is_maker,
        "ts_ms": ts_ms,
    }


def transfer_row(
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
) -> dict[str, Any]:
    """The new ``transfers`` row of ``record_transfer``'s arguments (two different wallets, or ValueError)."""
    if from_wallet == to_wallet:
        raise ValueError(f"a transfer needs two different wallets, got {from_wallet} -> {to_wallet}")
    return {
        "client_id": client_id,
        "venue": venue,
        "venue_tran_id": venue_tran_id,
        "asset": asset,
        "amount": amount,
        "from_wallet": from_wallet,
        "to_wallet": to_wallet,
        "status": status,
        "attempts": 0,
        "created_ms": now_ms,
        "updated_ms": now_ms,
    }
