"""Ledger reads the operator commands need beyond ``Ledger``'s own readers.

Written here with SQLAlchemy against ``bot.ledger.models`` (the repository stays the writers' API). Money
is never summed or compared in SQL (SQLite stores it as text): rows are loaded and added as Decimals.
Prices are not a ledger table; ``PriceBook`` rebuilds them from what the ledger does hold: fills, and the
bid/ask the strategy recorded in each decision's reason inputs, the perp mark prices of the engine's
``positions`` records, plus an optional ``prices`` mapping (symbol -> price) in any event's details.
"""

from __future__ import annotations

import asyncio
import bisect
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import async_sessionmaker

from bot.domain import perp_symbol, spot_symbol
from bot.ledger import db
from bot.ledger.models import (
    BalanceSnapshot,
    Event,
    EventKind,
    Fill,
    FundingRate,
    Pair,
)
from bot.ledger.recorder import Recorder
from bot.ledger.repository import Ledger


class LedgerNotFound(RuntimeError):
    """The URL points at no ledger (missing SQLite file or schema not migrated)."""


async def open_ledger(url: str) -> Ledger:
    """Open an existing ledger for reading; refuse to create an empty one by accident."""
    u = db.parse_url(url)
    is_file = u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:"
    if is_file and not Path(str(u.database)).exists():
        raise LedgerNotFound(f"no ledger at {db.safe_url(url)} (the file does not exist)")
    if await db.current(url) is None:
        raise LedgerNotFound(f"{db.safe_url(url)} has no ledger schema; run `fundbot db upgrade --url ...` first")
    return await Ledger.open(url, migrate=False)


def symbols_of(pair_symbol: str) -> list[str]:
    """Both spellings an event or fill may use for one pair: the spot and the perp symbol."""
    base = spot_symbol(pair_symbol)
    return [base, perp_symbol(base)]


def to_dec(value: Any) -> Decimal | None:
    """Decimal from a details value ('123.4', 5, None, '') without raising."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        d = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return d if d.is_finite() else None


async def select_events(
    ledger: Ledger,
    *,
    since_ms: int | None = None,
    after_id: int | None = None,
    kinds: Sequence[str] | None = None,
    pair_symbol: str | None = None,
    limit: int | None = None,
    newest_first: bool = False,
) -> list[tuple[Event, str | None]]:
    """Events with the symbol to show (the event's own, else its pair's), oldest first unless asked.

    ``pair_symbol`` matches the spot or perp spelling in ``events.symbol`` or any pair of that symbol.
    """
    stmt = select(Event, Pair.symbol).outerjoin(Pair, Pair.id == Event.pair_id)
    stmt = stmt.order_by(Event.id.desc() if newest_first else Event.id)
    if since_ms is not None:
        stmt = stmt.where(Event.ts_ms >= since_ms)
    if after_id is not None:
        stmt = stmt.where(Event.id > after_id)
    if kinds:
        stmt = stmt.where(Event.kind.in_([EventKind(k) for k in kinds]))
    if pair_symbol:
        names = symbols_of(pair_symbol)
        stmt = stmt.where(or_(Event.symbol.in_(names), Pair.symbol.in_(names)))
    if limit is not None:
        stmt = stmt.limit(limit)
    async with async_sessionmaker(ledger.engine, expire_on_commit=False)() as s:
        rows = (await s.execute(stmt)).all()
    return [(ev, ev.symbol or pair_sym) for ev, pair_sym in rows]


async def last_event_id(ledger: Ledger) -> int:
    async with async_sessionmaker(ledger.engine)() as s:
        return int((await s.scalar(select(func.max(Event.id)))) or 0)


async def all_fills(ledger: Ledger, pair_symbol: str | None = None, venue: str | None = None) -> list[Fill]:
    stmt = select(Fill).order_by(Fill.ts_ms, Fill.id)
    if pair_symbol:
        stmt = stmt.where(Fill.symbol.in_(symbols_of(pair_symbol)))
    if venue is not None:
        stmt = stmt.where(Fill.venue == venue)
    async with async_sessionmaker(ledger.engine, expire_on_commit=False)() as s:
        return list((await s.scalars(stmt)).all())


async def all_balance_snapshots(ledger: Ledger) -> list[BalanceSnapshot]:
    stmt = select(BalanceSnapshot).order_by(BalanceSnapshot.ts_ms, BalanceSnapshot.id)
    async with async_sessionmaker(ledger.engine, expire_on_commit=False)() as s:
        return list((await s.scalars(stmt)).all())


HISTORICAL_AFTER_MS = 24 * 3_600_000  # a ledger whose last event is older than this is read as of that event


async def ledger_clock(ledger: Ledger, wall_ms: int) -> tuple[int, int | None]:
    """The instant the operator commands read this ledger at, and the ledger's last event when that is
    what they use. A backtest's or a demo's ledger ends on simulated time, years before the wall clock:
    "--since 1d" found nothing and every age read "968d ago". A ledger whose last event is over a day
    old is read as of that event (the commands say so); a running daemon's keeps the wall clock."""
    async with ledger.engine.connect() as conn:
        newest = (await conn.execute(select(func.max(Event.ts_ms)))).scalar()
    if newest is None or wall_ms - int(newest) <= HISTORICAL_AFTER_MS:
        return wall_ms, None
    return int(newest), int(newest)


BACKTEST_FINISHED = "backtest finished"  # the last event a backtest writes (bot.backtest.core.EngineLoop.finish)


async def is_backtest_ledger(ledger: Ledger) -> bool:
    """True for a ledger a backtest wrote: no daemon reads it."""
    async with ledger.engine.connect() as conn:
        found = await conn.execute(select(Event.id).where(Event.message.like(f"{BACKTEST_FINISHED}%")).limit(1))
        return found.first() is not None


def current_account(snapshots: list[BalanceSnapshot]) -> tuple[str | None, list[str]]:
    """The venue name of the newest balance snapshot, and the other accounts the ledger holds. A dry run
    opened with ``--fresh`` starts a new paper account (``paper-...``) in the same ledger; the daemon
    carries on the newest and forgets the earlier ones, so status and report describe the newest."""
    if not snapshots:
        return None, []
    newest = max(snapshots, key=lambda r: (r.ts_ms, r.id)).venue
    return newest, sorted({r.venue for r in snapshots} - {newest})


async def latest_funding_rate(ledger: Ledger, symbol: str) -> FundingRate | None:
    """The newest rate row of the pair (either spelling): prefer the predicted rate of the latest funding
    time, which is the next settlement when the engine records predictions."""
    stmt = (
        select(FundingRate)
        .where(FundingRate.symbol.in_(symbols_of(symbol)))
        .order_by(FundingRate.funding_time_ms.desc(), FundingRate.kind, FundingRate.observed_ms.desc())
        .limit(1)
    )
    async with async_sessionmaker(ledger.engine, expire_on_commit=False)() as s:
        row = (await s.scalars(stmt)).first()
    return row


def decision_target(details: dict[str, Any] | None) -> dict[str, Any]:
    """The level of a decision's details that holds action/target_qty: the details themselves, or the
    executor's nested ``target`` (Target.to_dict())."""
    if not isinstance(details, dict):
        return {}
    target = details.get("target")
    return target if isinstance(target, dict) else details


def decision_reason(details: dict[str, Any] | None) -> dict[str, Any]:
    """The Reason dict inside a decision event's details, whichever shape the writer used: flat
    (``{"action", "target_qty", **Reason.to_dict()}``), under ``reason`` (Target.to_dict()) or under
    ``target.reason`` (the executor's). {} when none."""
    level = decision_target(details)
    inner = level.get("reason")
    if isinstance(inner, dict):
        return inner
    return level if "rule" in level or "economics" in level else {}


@dataclass
class PriceBook:
    """Observed prices per symbol over time; ``at(symbol, ts)`` is the last one at or before ``ts``.

    Kept sorted lazily: a symbol is re-sorted (stably, so equal instants keep their order) only after an
    ``add``, and its instants are cached for the bisections (a report or an equity curve asks thousands).
    """

    _obs: dict[str, list[tuple[int, Decimal]]] = field(default_factory=lambda: defaultdict(list))
    _ts: dict[str, list[int]] = field(default_factory=dict)
    _dirty: set[str] = field(default_factory=set)

    def add(self, symbol: str, ts_ms: int, price: Decimal | None) -> None:
        if price is not None and price > 0:
            self._obs[symbol].append((ts_ms, price))
            self._dirty.add(symbol)

    def _sorted(self, symbol: str) -> list[tuple[int, Decimal]]:
        obs = self._obs.get(symbol, [])
        if symbol in self._dirty:
            obs.sort(key=lambda o: o[0])
            self._ts[symbol] = [o[0] for o in obs]
            self._dirty.discard(symbol)
        return obs

    def _index(self, symbol: str, ts_ms: int) -> tuple[list[tuple[int, Decimal]], int]:
        obs = self._sorted(symbol)
        return obs, bisect.bisect_right(self._ts.get(symbol, []), ts_ms)

    def latest(self, symbol: str) -> Decimal | None:
        obs = self._sorted(symbol)
        return obs[-1][1] if obs else None

    def at(self, symbol: str, ts_ms: int) -> Decimal | None:
        """The last price at or before ``ts_ms``; the first one after it when none is earlier."""
        obs, i = self._index(symbol, ts_ms)
        if not obs:
            return None
        return obs[i - 1][1] if i > 0 else obs[0][1]

    def at_or_before(self, symbol: str, ts_ms: int) -> Decimal | None:
        """The last price at or before ``ts_ms``; None when nothing was observed by then."""
        obs, i = self._index(symbol, ts_ms)
        return obs[i - 1][1] if i > 0 else None

    def observed_at_or_before(self, symbol: str, ts_ms: int) -> int | None:
        """When the price ``at_or_before`` returns was observed; None when nothing was observed by then."""
        obs, i = self._index(symbol, ts_ms)
        return obs[i - 1][0] if i > 0 else None

    def symbols(self) -> Iterable[str]:
        return self._obs.keys()


def _mid(bid: Decimal | None, ask: Decimal | None) -> Decimal | None:
    if bid is not None and ask is not None:
        return (bid + ask) / 2
    return bid or ask


def add_event_prices(book: PriceBook, ev: Event) -> None:
    """The prices one event records: a ``prices`` mapping, ``positions`` marks, a decision's bid/ask mids."""
    details = ev.details if isinstance(ev.details, dict) else {}
    prices = details.get("prices")
    if isinstance(prices, dict):
        for sym, p in prices.items():
            book.add(str(sym), ev.ts_ms, to_dec(p))
    positions = details.get("positions")
    if isinstance(positions, dict):  # the engine's position records carry each perp's mark price
        for sym, pos in positions.items():
            if isinstance(pos, dict):
                book.add(perp_symbol(spot_symbol(str(sym))), ev.ts_ms, to_dec(pos.get("mark_price")))
    if ev.kind is EventKind.DECISION:
        inputs = decision_reason(details).get("inputs")
        if isinstance(inputs, dict):
            spot = inputs.get("spot_symbol") or ev.symbol
            if spot:
                spot = spot_symbol(str(spot))
                perp = str(inputs.get("perp_symbol") or perp_symbol(spot))
                book.add(spot, ev.ts_ms, _mid(to_dec(inputs.get("spot_bid")), to_dec(inputs.get("spot_ask"))))
                book.add(perp, ev.ts_ms, _mid(to_dec(inputs.get("perp_bid")), to_dec(inputs.get("perp_ask"))))


async def build_price_book(ledger: Ledger, *, include_fills: bool = True) -> PriceBook:
    """Prices from fills, decision inputs (bid/ask mids), ``positions`` marks and any ``prices`` mapping.

    Without fills it holds only what was observed before acting: the reference for slippage.
    """
    follower = PriceBookFollower(include_fills=include_fills)
    await follower.refresh(ledger)
    return follower.book


async def recorded_price_book(recorder: Recorder) -> PriceBook:
    """``build_price_book`` through the recorder's own reads, for a ledger without SQL of its own (a
    backtest's in-memory ledger); it reads every fill and event at once."""
    book = PriceBook()
    for f in await recorder.list_fills():
        book.add(f.symbol, f.ts_ms, f.price)
    for ev in await recorder.events():
        if ev.details is not None:
            add_event_prices(book, ev)
    return book


@dataclass
class PriceBookFollower:
    """A ``build_price_book`` kept up to date by reading only the fills and events written since the last
    ``refresh`` (the API reads status every few seconds; rebuilding from the whole ledger each time grew
    with its age)."""

    include_fills: bool = True
    book: PriceBook = field(default_factory=PriceBook)
    last_fill_id: int = 0
    last_event_id: int = 0

    async def refresh(self, ledger: Ledger) -> PriceBook:
        if self.include_fills:
            async for rows in read_after(
                ledger, Fill.__table__, self.last_fill_id, Fill.symbol, Fill.ts_ms, Fill.price
            ):
                for r in rows:
                    self.book.add(r.symbol, r.ts_ms, r.price)
                self.last_fill_id = rows[-1].id
        async for rows in read_after(
            ledger,
            Event.__table__,
            self.last_event_id,
            Event.ts_ms,
            Event.kind,
            Event.symbol,
            Event.details,
            where=Event.details.is_not(None),
        ):
            for ev in rows:
                add_event_prices(self.book, ev)
            self.last_event_id = rows[-1].id
        return self.book


READ_BATCH = 5000


async def read_after(
    ledger: Ledger, table: Any, after_id: int, *columns: Any, where: Any = None
) -> AsyncIterator[list[Any]]:
    """Rows of ``table`` with id > ``after_id``, in id order, ``READ_BATCH`` at a time as plain rows (``id``
    first, then ``columns``). Between batches the event loop runs other work: a first read of a months-old
    ledger does not hold the daemon's loop for seconds."""
    last = after_id
    while True:
        stmt = select(table.c.id, *columns).where(table.c.id > last).order_by(table.c.id).limit(READ_BATCH)
        if where is not None:
            stmt = stmt.where(where)
        async with ledger.engine.connect() as conn:
            rows = list((await conn.execute(stmt)).all())
        if not rows:
            return
        yield rows
        last = rows[-1].id
        if len(rows) < READ_BATCH:
            return
        await asyncio.sleep(0)
