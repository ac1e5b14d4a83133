"""The ledger's read queries, built in one place so ``Ledger`` (SQLAlchemy, live and dry-run) and
``MemoryLedger`` (a backtest's recorder, reading flushed rows back from its file) answer a read with
the same SQL: the same filters, the same order, the same limit."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Select, and_, func, select

from bot.ledger.models import BalanceSnapshot, Event, EventKind, Fill, FundingPayment, FundingRate, RateKind

S = TypeVar("S", bound=Select[Any])


def limited(stmt: S, limit: int | None) -> S:
    return stmt if limit is None else stmt.limit(limit)


def fills_query(
    *,
    symbol: str | None = None,
    pair_id: int | None = None,
    client_order_id: str | None = None,
    since_ms: int | None = None,
    limit: int | None = None,
    venue: str | None = None,
) -> Select[Any]:
    """Fills oldest first (by trade time)."""
    stmt = select(Fill).order_by(Fill.ts_ms, Fill.id)
    if venue is not None:
        stmt = stmt.where(Fill.venue == venue)
    if symbol is not None:
        stmt = stmt.where(Fill.symbol == symbol)
    if pair_id is not None:
        stmt = stmt.where(Fill.pair_id == pair_id)
    if client_order_id is not None:
        stmt = stmt.where(Fill.client_order_id == client_order_id)
    if since_ms is not None:
        stmt = stmt.where(Fill.ts_ms >= since_ms)
    return limited(stmt, limit)


def funding_payments_query(
    symbol: str | None = None,
    since_ms: int | None = None,
    *,
    until_ms: int | None = None,
    pair_id: int | None = None,
    venue: str | None = None,
    limit: int | None = None,
) -> Select[Any]:
    """Funding payments oldest first; ``since_ms``/``until_ms`` bound the funding time [since, until)."""
    stmt = select(FundingPayment).order_by(FundingPayment.funding_time_ms, FundingPayment.id)
    if symbol is not None:
        stmt = stmt.where(FundingPayment.symbol == symbol)
    if since_ms is not None:
        stmt = stmt.where(FundingPayment.funding_time_ms >= since_ms)
    if until_ms is not None:
        stmt = stmt.where(FundingPayment.funding_time_ms < until_ms)
    if pair_id is not None:
        stmt = stmt.where(FundingPayment.pair_id == pair_id)
    if venue is not None:
        stmt = stmt.where(FundingPayment.venue == venue)
    return limited(stmt, limit)


def funding_rates_query(
    symbol: str,
    *,
    venue: str | None = None,
    kind: RateKind | None = None,
    since_ms: int | None = None,
    until_ms: int | None = None,
    limit: int | None = None,
) -> Select[Any]:
    """Observed rates of ``symbol`` by funding time, oldest first; [since_ms, until_ms)."""
    stmt = (
        select(FundingRate).where(FundingRate.symbol == symbol).order_by(FundingRate.funding_time_ms, FundingRate.kind)
    )
    if venue is not None:
        stmt = stmt.where(FundingRate.venue == venue)
    if kind is not None:
        stmt = stmt.where(FundingRate.kind == kind)
    if since_ms is not None:
        stmt = stmt.where(FundingRate.funding_time_ms >= since_ms)
    if until_ms is not None:
        stmt = stmt.where(FundingRate.funding_time_ms < until_ms)
    return limited(stmt, limit)


def latest_balances_query(venue: str | None = None) -> Select[Any]:
    """The most recent snapshot of each (venue, wallet): all its asset rows, by venue, wallet, asset."""
    latest = select(
        BalanceSnapshot.venue, BalanceSnapshot.wallet, func.max(BalanceSnapshot.ts_ms).label("ts_ms")
    ).group_by(BalanceSnapshot.venue, BalanceSnapshot.wallet)
    if venue is not None:
        latest = latest.where(BalanceSnapshot.venue == venue)
    sub = latest.subquery()
    return (
        select(BalanceSnapshot)
        .join(
            sub,
            and_(
                BalanceSnapshot.venue == sub.c.venue,
                BalanceSnapshot.wallet == sub.c.wallet,
                BalanceSnapshot.ts_ms == sub.c.ts_ms,
            ),
        )
        .order_by(BalanceSnapshot.venue, BalanceSnapshot.wallet, BalanceSnapshot.asset)
    )


def events_query(
    *,
    since_ms: int | None = None,
    after_id: int | None = None,
    kinds: Sequence[EventKind] | None = None,
    symbol: str | None = None,
    pair_id: int | None = None,
    limit: int | None = None,
    newest_first: bool = False,
    message_prefix: str | None = None,
) -> Select[Any]:
    """Events matching every given filter, by id (oldest first unless ``newest_first``)."""
    stmt = select(Event).order_by(Event.id.desc() if newest_first else Event.id)
    if message_prefix is not None:
        stmt = stmt.where(Event.message.startswith(message_prefix, autoescape=True))
    if since_ms is not None:
        stmt = stmt.where(Event.ts_ms >= since_ms)
    if after_id is not None:
        stmt = stmt.where(Event.id > after_id)
    if kinds is not None:
        stmt = stmt.where(Event.kind.in_(list(kinds)))
    if symbol is not None:
        stmt = stmt.where(Event.symbol == symbol)
    if pair_id is not None:
        stmt = stmt.where(Event.pair_id == pair_id)
    return limited(stmt, limit)
