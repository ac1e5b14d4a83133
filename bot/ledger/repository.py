"""``Ledger``: the async repository every part writes facts to and every operator command reads from.

Rules it keeps:
- Each method is its own transaction; nothing is left half-written.
- Facts are idempotent on their natural keys (INSERT ... ON CONFLICT DO NOTHING): recording the same
  fill, funding payment, transfer, intent or balance row twice changes nothing and the second call says
  so (False, or the row that already existed).
- The ledger never reads the clock: every write takes ``now_ms`` / ``ts_ms`` from the caller.

Readers return ORM rows (``bot.ledger.models``) that are detached snapshots: read their attributes
freely, but changing them writes nothing. Money attributes are ``Decimal``, times are epoch ms, enum
columns come back as the StrEnums in ``bot.domain`` / ``bot.ledger.models``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Connection, Row, Select, Table, func, select, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.domain import ZERO, Leg, PairState, Side
from bot.domain import perp_symbol as linear_perp_of
from bot.ledger import db, queries
from bot.ledger.controls import event_row
from bot.ledger.models import (
    ACCOUNT,
    OPEN_INTENT_STATUSES,
    BalanceSnapshot,
    Control,
    ControlKind,
    ControlStatus,
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
from bot.ledger.outage import OutageTracker, is_unwritable
from bot.ledger.rows import fill_row, order_row, transfer_row

T = TypeVar("T")
log = logging.getLogger(__name__)


def _transaction(conn: Connection, fn: Callable[..., T], *args: Any) -> T:
    """``fn(conn, *args)`` inside one transaction: committed when it returns, rolled back if it raises."""
    with conn.begin():
        return fn(conn, *args)


def _model(entity: type[T], row: Row[Any]) -> T:
    """One row (the column types have already converted Decimal, enums and JSON) as a model object
    built by its constructor: a snapshot no session tracks, so changing it writes nothing."""
    return entity(**row._mapping)


def _models(conn: Connection, stmt: Select[T], params: Mapping[str, Any] | None = None) -> list[T]:
    """The rows of a one-entity select (``select(Pair)...``) as detached model objects."""
    entity: type[T] = stmt.column_descriptions[0]["entity"]
    return [_model(entity, row) for row in conn.execute(stmt, params)]


def _model_or_none(conn: Connection, stmt: Select[T], params: Mapping[str, Any] | None = None) -> T | None:
    """The one row of ``stmt`` as a model object, or None; more than one row is an error."""
    rows = _models(conn, stmt, params)
    if len(rows) > 1:
        raise LookupError(f"expected at most one row, got {len(rows)}")
    return rows[0] if rows else None


def _written_or_stored(
    conn: Connection, write: Any, row: Mapping[str, Any], read: Select[T], key: Mapping[str, Any]
) -> T:
    """The row a write ``... RETURNING *`` gave back, or, when the write changed nothing (a known key, a
    stale update), the row stored under ``key``."""
    written = conn.execute(write, row).one_or_none()
    if written is not None:
        entity: type[T] = read.column_descriptions[0]["entity"]
        return _model(entity, written)
    (stored,) = _models(conn, read, key)
    return stored


def _active_control(conn: Connection, kind: ControlKind, symbol: str) -> Control | None:
    stmt = select(Control).where(Control.kind == kind, Control.symbol == symbol, Control.status == ControlStatus.ACTIVE)
    return _model_or_none(conn, stmt.with_for_update())


def _move_control(conn: Connection, control_id: int, status: ControlStatus, now_ms: int, note: str | None) -> Control:
    table = Control.__table__
    values: dict[str, Any] = {"status": status, "updated_ms": now_ms}
    if note is not None:
        values["note"] = note
    row = conn.execute(update(table).where(table.c.id == control_id).values(**values).returning(*table.c)).one()
    return _model(Control, row)


def dialect_insert(dialect: str, table: Table) -> Any:
    """INSERT for this dialect (both have on_conflict_do_nothing / on_conflict_do_update)."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


def _inserted(conn: Connection, stmt: Any, params: Mapping[str, Any] | None = None) -> bool:
    """Run an INSERT ... ON CONFLICT ... RETURNING id; True when it wrote a row."""
    return conn.execute(stmt, params).scalar_one_or_none() is not None


_ORDER_KEPT = ("venue_order_id", "pair_id", "price", "avg_price")  # never erased by a later update


def _insert_event() -> Any:
    table = Event.__table__
    return table.insert().returning(table.c.id)


def _same_kind(intent: Intent, kind: IntentKind) -> Intent:
    if intent.kind != kind:
        raise ValueError(f"client id {intent.client_id!r} already belongs to a {intent.kind} intent, not {kind}")
    return intent


def _progress(table: Table, client_id: str, values: Mapping[str, Any], count_attempt: bool) -> Any:
    """UPDATE ``table`` (intents, transfers) of ``client_id`` with ``values``, one more attempt if asked."""
    stmt = update(table).where(table.c.client_id == client_id).values(**values)
    if count_attempt:
        stmt = stmt.values(attempts=table.c.attempts + 1)
    return stmt.returning(*table.c)


@dataclass(frozen=True, slots=True)
class AssetBalance:
    """One asset of a wallet: free + used = total (what ccxt's fetch_balance reports)."""

    free: Decimal
    used: Decimal
    total: Decimal


# How a wallet that holds nothing is snapshotted: one zero row, so readers see it went empty (with no row
# at all they kept its previous balance, e.g. a futures wallet after a liquidation took all of it).
EMPTY_WALLET: Mapping[str, AssetBalance] = {"USDT": AssetBalance(Decimal(0), Decimal(0), Decimal(0))}


@dataclass(frozen=True, slots=True)
class FundingRecord:
    """One funding settlement to record (the arguments of ``Ledger.record_funding_payment``)."""

    venue: str
    account: str
    symbol: str
    funding_time_ms: int
    amount: Decimal
    source: FundingSource
    now_ms: int
    rate: Decimal | None = None
    position_size: Decimal | None = None
    asset: str = "USDT"
    pair_id: int | None = None

    def row(self) -> dict[str, Any]:
        """The ``funding_payments`` row this settlement becomes."""
        return {
            "venue": self.venue,
            "account": self.account,
            "symbol": self.symbol,
            "funding_time_ms": self.funding_time_ms,
            "rate": self.rate,
            "amount": self.amount,
            "asset": self.asset,
            "position_size": self.position_size,
            "source": self.source,
            "pair_id": self.pair_id,
            "recorded_ms": self.now_ms,
        }

    def event(self) -> EventRecord:
        """The operator-log line for this payment, as the daemon's funding sync writes it."""
        return EventRecord(
            EventKind.FUNDING,
            f"{self.symbol} funding {self.amount:+f} {self.asset}",
            ts_ms=self.now_ms,
            pair_id=self.pair_id,
            symbol=self.symbol,
            details={"amount": str(self.amount), "funding_time_ms": self.funding_time_ms},
        )


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One operator-log entry to append (the arguments of ``Ledger.add_event``)."""

    kind: EventKind
    message: str
    ts_ms: int
    pair_id: int | None = None
    symbol: str | None = None
    details: Mapping[str, Any] | None = None

    def row(self) -> dict[str, Any]:
        """The ``events`` row this entry becomes."""
        return {
            "ts_ms": self.ts_ms,
            "kind": self.kind,
            "pair_id": self.pair_id,
            "symbol": self.symbol,
            "message": self.message,
            "details": dict(self.details) if self.details is not None else None,
        }


@dataclass(frozen=True, slots=True)
class IntentRecord:
    """One write-ahead intent to commit (the arguments of ``Ledger.create_intent``), for ``write_ahead``."""

    kind: IntentKind
    client_id: str
    now_ms: int
    payload: Mapping[str, Any] | None = None
    pair_id: int | None = None

    def row(self, status: IntentStatus, attempts: int) -> dict[str, Any]:
        """The ``intents`` row this intent becomes, in ``status`` after ``attempts`` sends."""
        return {
            "client_id": self.client_id,
            "kind": self.kind,
            "pair_id": self.pair_id,
            "payload": dict(self.payload or {}),
            "status": status,
            "attempts": attempts,
            "created_ms": self.now_ms,
            "updated_ms": self.now_ms,
        }


class Ledger:
    """Async access to the ledger database. Open with ``await Ledger.open(url)``; close with ``close()``."""

    def __init__(self, engine: AsyncEngine) -> None:
        """Each transaction takes a pooled connection, so concurrent tasks of the daemon never share one."""
        self._engine = engine
        self._dialect = engine.dialect.name
        # Events are committed one at a time so their ids become visible in order (tail follows after_id).
        self._event_lock = asyncio.Lock()
        # Write outages (read-only or full database) and the clock they are timed on: the daemon sets the
        # run's clock; the ledger reads no clock for any fact it stores.
        self.outages = OutageTracker()
        # An in-memory SQLite database lives in its one connection: never discarded.
        self._poolable = not db.is_memory_sqlite(engine.url)

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Ledger:
        """Connect to ``url``; with ``migrate`` bring the schema to head first (the daemon does this).
        A backtest records through ``bot.ledger.memory.MemoryLedger`` instead (same interface)."""
        if db.is_memory_sqlite(url):
            # An in-memory database exists only inside its engine: migrate that very engine. It shares one
            # connection, so use it from one task at a time (backtests, tests), not from concurrent tasks.
            engine = db.make_engine(url)
            if migrate:
                await db.migrate_engine(engine)
            return cls(engine)
        if migrate:
            await db.upgrade(url)
        return cls(db.make_engine(url))

    async def close(self) -> None:
        await self._engine.dispose()

    async def __aenter__(self) -> Ledger:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def engine(self) -> AsyncEngine:
        return self._engine

    # -- helpers ---------------------------------------------------------------------------------------

    def _insert(self, table: Table) -> Any:
        """INSERT for this dialect (both have on_conflict_do_nothing / on_conflict_do_update)."""
        return dialect_insert(self._dialect, table)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(conn, *args)`` in ONE transaction, run as one synchronous function in one hop into
        SQLAlchemy's greenlet (not one hop for the connection, the begin, each statement and the commit;
        on aiosqlite and asyncpg each driver call is still awaited inside it).

        ``fn`` must not await or touch the event loop; it is the whole transaction. A failure that says
        the database cannot be written (``bot.ledger.outage``) discards the connection, opens or extends
        an outage, and is raised; the first success afterwards records the outage as an event."""
        try:
            result = await self._run_once(fn, *args)
        except Exception as exc:
            if is_unwritable(exc) and self.outages.failed(exc) and self._poolable:
                error = self.outages.current.error if self.outages.current else type(exc).__name__
                log.warning("the ledger cannot be written (%s): connections discarded until it can", error)
                await self._engine.dispose()  # every pooled connection may be one opened read-only
            raise
        if self.outages.current is not None and not self._event_lock.locked():
            await self._record_outage_end()
        return result

    async def _run_once(self, fn: Callable[..., T], *args: Any) -> T:
        async with self._engine.connect() as conn:
            try:
                result = await conn.run_sync(_transaction, fn, *args)
            except Exception as exc:
                if is_unwritable(exc) and self._poolable:
                    await conn.invalidate()  # never handed out again
                raise
            if self.outages.current is not None and self._poolable:
                await conn.invalidate()  # opened during the outage: may be read-only for good
            return result

    async def _record_outage_end(self) -> None:
        """One ``ledger_outage`` event (start, end, failed writes) once the ledger takes writes again."""
        outage = self.outages.current
        if outage is None:
            return
        self.outages.current = None
        end = self.outages.clock()
        row = EventRecord(EventKind.LEDGER_OUTAGE, outage.message(end), end, details=outage.details(end)).row()
        stmt = _insert_event()
        try:
            async with self._event_lock:
                await self._run_once(lambda conn: conn.execute(stmt, row).scalar_one())
        except Exception:
            self.outages.current = outage  # still unwritable (this probe is not a caller's failed write)
            return
        log.warning("ledger writable again: %s", outage.message(end))

    async def _all(self, stmt: Select[T], params: Mapping[str, Any] | None = None) -> list[T]:
        return await self._run(_models, stmt, params)

    async def _one_or_none(self, stmt: Select[T], params: Mapping[str, Any] | None = None) -> T | None:
        return await self._run(_model_or_none, stmt, params)

    @staticmethod
    def _limit(stmt: Select[T], limit: int | None) -> Select[T]:
        return queries.limited(stmt, limit)

    # -- pairs -----------------------------------------------------------------------------------------

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
    ) -> Pair:
        """Create the active (not closed) pair of ``venue``/``symbol`` or update the given fields of it.

        A new pair starts in ``state`` (default opening) with zero legs; ``perp_symbol`` defaults to the linear
        perpetual of ``symbol``. Fields left None are not changed.
        """
        changes = {
            "target_qty": target_qty,
            "spot_qty": spot_qty,
            "perp_qty": perp_qty,
            "entry_spot_price": entry_spot_price,
            "entry_perp_price": entry_perp_price,
            "entry_basis": entry_basis,
            "note": note,
            "adopted_spot_qty": adopted_spot_qty,
            "adopted_perp_qty": adopted_perp_qty,
        }
        values: dict[str, Any] = {k: v for k, v in changes.items() if v is not None}
        if state is not None:
            values["state"] = state
            if state == PairState.CLOSED:
                values["closed_ms"] = now_ms
        values["updated_ms"] = now_ms

        table = Pair.__table__
        extra = {"perp_symbol": perp_symbol} if perp_symbol is not None else {}
        update_active = (
            update(table)
            .where(table.c.venue == venue, table.c.symbol == symbol, table.c.state != PairState.CLOSED)
            .values(**values, **extra)
            .returning(*table.c)
        )

        def upsert(conn: Connection) -> Pair:
            row = conn.execute(update_active).one_or_none()
            if row is None:
                new = {
                    "venue": venue,
                    "symbol": symbol,
                    "perp_symbol": perp_symbol or linear_perp_of(symbol),
                    "state": PairState.OPENING,
                    "target_qty": ZERO,
                    "spot_qty": ZERO,
                    "perp_qty": ZERO,
                    "funding_earned": ZERO,
                    "opened_ms": now_ms,
                } | values
                row = conn.execute(table.insert().returning(*table.c), new).one()
            return _model(Pair, row)

        return await self._run(upsert)

    async def get_pair(self, pair_id: int) -> Pair | None:
        return await self._one_or_none(select(Pair).where(Pair.id == pair_id))

    async def active_pair(self, venue: str, symbol: str) -> Pair | None:
        """The pair of ``venue``/``symbol`` that is not closed, if any."""
        return await self._one_or_none(
            select(Pair).where(Pair.venue == venue, Pair.symbol == symbol, Pair.state != PairState.CLOSED)
        )

    async def list_pairs(self, states: Iterable[PairState] | None = None, *, venue: str | None = None) -> list[Pair]:
        stmt = select(Pair).order_by(Pair.id)
        if states is not None:
            stmt = stmt.where(Pair.state.in_(list(states)))
        if venue is not None:
            stmt = stmt.where(Pair.venue == venue)
        return await self._all(stmt)

    async def set_pair_state(self, pair_id: int, state: PairState, *, now_ms: int, note: str | None = None) -> Pair:
        """Move a pair to ``state``; closed is final (a new position is a new pair)."""

        def move(conn: Connection) -> Pair:
            table = Pair.__table__
            pair = conn.execute(select(table).where(table.c.id == pair_id).with_for_update()).one_or_none()
            if pair is None:
                raise KeyError(f"no pair with id {pair_id}")
            if pair.state == PairState.CLOSED and state != PairState.CLOSED:
                raise ValueError(f"pair {pair_id} ({pair.symbol}) is closed; open a new pair instead")
            values: dict[str, Any] = {"updated_ms": now_ms}
            if pair.state != state:
                values["state"] = state
                if state == PairState.CLOSED:
                    values["closed_ms"] = now_ms
            if note is not None:
                values["note"] = note
            row = conn.execute(update(table).where(table.c.id == pair_id).values(**values).returning(*table.c)).one()
            return _model(Pair, row)

        return await self._run(move)

    # -- intents ---------------------------------------------------------------------------------------

    async def create_intent(
        self,
        kind: IntentKind,
        client_id: str,
        *,
        now_ms: int,
        payload: Mapping[str, Any] | None = None,
        pair_id: int | None = None,
    ) -> Intent:
        """Write the intent for ``client_id`` before acting; for a known client id return the stored row
        unchanged (its status tells whether the side effect was already attempted)."""
        row = IntentRecord(kind, client_id, now_ms, payload, pair_id).row(IntentStatus.PENDING, 0)
        table = Intent.__table__
        # RETURNING gives the row when it is new; on a known client id it gives nothing (then select it)
        write = self._insert(table).on_conflict_do_nothing().returning(*table.c)
        read = select(Intent).where(Intent.client_id == client_id)
        intent: Intent = await self._run(_written_or_stored, write, row, read, {})
        return _same_kind(intent, kind)

    async def write_ahead(
        self,
        intents: Sequence[IntentRecord],
        events: Sequence[EventRecord] = (),
        transfers: Sequence[Mapping[str, Any]] = (),
    ) -> list[tuple[Intent, bool]]:
        """Commit the intents of sends about to be made, each already marked ``sent`` (one attempt), with
        ``events``, in ONE transaction: the caller sends nothing before this returns, and then sends all of
        them at once (both legs of a pair). Each comes back with True when its client id was new; a known
        id's row is returned unchanged with False, and nothing may be sent under it. ``transfers``
        (``record_transfer``'s keyword arguments) are the rows of transfer intents, stored ``sent`` (one
        attempt) when their intent is new. Reconciliation treats a ``sent`` intent the venue never saw as
        it treats a pending one: looked up (orders by client id, transfers in the venue's history)."""
        table = Intent.__table__
        write = self._insert(table).on_conflict_do_nothing().returning(*table.c)
        event_stmt = Event.__table__.insert()
        event_rows = [e.row() for e in events]
        transfer_table = Transfer.__table__
        transfer_stmt = self._insert(transfer_table).on_conflict_do_nothing().returning(transfer_table.c.id)
        transfer_rows = {
            t["client_id"]: {**transfer_row(**t), "status": TransferStatus.SENT, "attempts": 1} for t in transfers
        }

        def commit(conn: Connection) -> list[tuple[Intent, bool]]:
            out = []
            for rec in intents:
                written = conn.execute(write, rec.row(IntentStatus.SENT, 1)).one_or_none()
                if written is not None:
                    out.append((_model(Intent, written), True))
                    if rec.client_id in transfer_rows and not _inserted(
                        conn, transfer_stmt, transfer_rows[rec.client_id]
                    ):
                        raise IntegrityError("write_ahead", None, Exception(f"transfer {rec.client_id} exists"))
                    continue
                (stored,) = _models(conn, select(Intent).where(Intent.client_id == rec.client_id))
                out.append((_same_kind(stored, rec.kind), False))
            if event_rows:
                conn.execute(event_stmt, event_rows)
            return out

        async with self._event_lock:
            return await self._run(commit)

    async def get_intent(self, client_id: str) -> Intent | None:
        return await self._one_or_none(select(Intent).where(Intent.client_id == client_id))

    async def set_intent_status(
        self,
        client_id: str,
        status: IntentStatus,
        *,
        now_ms: int,
        error: str | None = None,
        count_attempt: bool = False,
    ) -> Intent:
        """Record progress of an intent; ``count_attempt`` adds one to ``attempts`` (a send was tried)."""
        values: dict[str, Any] = {"status": status, "updated_ms": now_ms}
        if error is not None:
            values["last_error"] = error
        stmt = _progress(Intent.__table__, client_id, values, count_attempt)

        def set_status(conn: Connection) -> Intent:
            row = conn.execute(stmt).one_or_none()
            if row is None:
                raise KeyError(f"no intent with client id {client_id!r}")
            return _model(Intent, row)

        return await self._run(set_status)

    async def pair_client_ids(self, pair_id: int) -> list[str]:
        """Every client id the pair's orders and intents use (settled intents too: a failed, never-sent
        intent still owns its id), for picking the next action number."""
        orders, intents = Order.__table__, Intent.__table__
        stmt = union_all(
            select(orders.c.client_order_id).where(orders.c.pair_id == pair_id),
            select(intents.c.client_id).where(intents.c.pair_id == pair_id),
        )
        return await self._run(lambda conn: list(conn.execute(stmt).scalars()))

    async def list_intents(
        self, kinds: Iterable[IntentKind] | None = None, statuses: Iterable[IntentStatus] | None = None
    ) -> list[Intent]:
        """Intents of the given kinds and statuses (all when None), oldest first."""
        stmt = select(Intent).order_by(Intent.id)
        if kinds is not None:
            stmt = stmt.where(Intent.kind.in_(list(kinds)))
        if statuses is not None:
            stmt = stmt.where(Intent.status.in_(list(statuses)))
        return await self._all(stmt)

    async def open_intents(self, kinds: Iterable[IntentKind] | None = None) -> list[Intent]:
        """Intents whose outcome is not settled (pending, sent, unknown), oldest first: what
        reconciliation must resolve after a restart."""
        stmt = select(Intent).where(Intent.status.in_(OPEN_INTENT_STATUSES)).order_by(Intent.id)
        if kinds is not None:
            stmt = stmt.where(Intent.kind.in_(list(kinds)))
        return await self._all(stmt)

    # -- orders ----------------------------------------------------------------------------------------

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
    ) -> Order:
        """Insert or update the order with ``client_order_id`` (status, fills, venue id); returns it.

        An update older than the stored one (``now_ms`` < ``updated_ms``) is ignored, so a late REST
        answer never overwrites a newer WebSocket update. Known venue id / prices are never erased.
        """
        row = order_row(
            client_order_id=client_order_id,
            venue=venue,
            symbol=symbol,
            leg=leg,
            side=side,
            type=type,
            quantity=quantity,
            now_ms=now_ms,
            status=status,
            price=price,
            filled_qty=filled_qty,
            avg_price=avg_price,
            venue_order_id=venue_order_id,
            pair_id=pair_id,
            reduce_only=reduce_only,
        )
        return await self._run(_written_or_stored, *self._order_write(row))

    async def record_order_outcome(
        self,
        order: Mapping[str, Any],
        events: Sequence[EventRecord],
        fills: Sequence[tuple[Mapping[str, Any], EventRecord]],
        intent: tuple[str, IntentStatus, int] | None = None,
    ) -> list[bool]:
        """What the venue said of one order, in ONE transaction: the order (``record_order``'s keyword
        arguments), ``events``, each fill (``record_fill``'s) with its event when the fill is new, and the
        order's intent moved to a status (client id, status, now_ms). Returns which fills were new."""
        order_stmts = self._order_write(order_row(**order))
        fill_stmt = self._insert(Fill.__table__).on_conflict_do_nothing().returning(Fill.__table__.c.id)
        event_stmt = Event.__table__.insert()
        fill_rows = [(fill_row(**f), e.row()) for f, e in fills]
        event_rows = [e.row() for e in events]
        progress, intent_id = None, None
        if intent is not None:
            intent_id, status, now_ms = intent
            progress = _progress(Intent.__table__, intent_id, {"status": status, "updated_ms": now_ms}, False)

        def write(conn: Connection) -> list[bool]:
            _written_or_stored(conn, *order_stmts)
            if event_rows:
                conn.execute(event_stmt, event_rows)
            new = []
            for row, event in fill_rows:
                new.append(_inserted(conn, fill_stmt, row))
                if new[-1]:
                    conn.execute(event_stmt, event)
            if progress is not None and conn.execute(progress).one_or_none() is None:
                raise KeyError(f"no intent with client id {intent_id!r}")
            return new

        async with self._event_lock:
            return await self._run(write)

    def _order_write(self, row: dict[str, Any]) -> tuple[Any, dict[str, Any], Select[Order], dict[str, Any]]:
        """``record_order``'s upsert of ``row`` and the read of the stored order (``_written_or_stored``)."""
        client_order_id = row["client_order_id"]
        orders = Order.__table__
        ins = self._insert(orders)
        ex = ins.excluded
        write = ins.on_conflict_do_update(
            index_elements=[orders.c.client_order_id],
            set_={
                **{name: func.coalesce(ex[name], orders.c[name]) for name in _ORDER_KEPT},
                "filled_qty": ex.filled_qty,
                "status": ex.status,
                "updated_ms": ex.updated_ms,
            },
            where=ex.updated_ms >= orders.c.updated_ms,
        ).returning(*orders.c)  # nothing when a newer update is already stored (then select it)
        read = select(Order).where(Order.client_order_id == client_order_id)
        return write, row, read, {}

    async def get_order(self, client_order_id: str) -> Order | None:
        return await self._one_or_none(select(Order).where(Order.client_order_id == client_order_id))

    async def list_orders(
        self,
        *,
        symbol: str | None = None,
        pair_id: int | None = None,
        statuses: Iterable[str] | None = None,
        since_ms: int | None = None,
        limit: int | None = None,
        venue: str | None = None,
    ) -> list[Order]:
        """Orders oldest first (by created_ms)."""
        stmt = select(Order).order_by(Order.created_ms, Order.id)
        if venue is not None:
            stmt = stmt.where(Order.venue == venue)
        if symbol is not None:
            stmt = stmt.where(Order.symbol == symbol)
        if pair_id is not None:
            stmt = stmt.where(Order.pair_id == pair_id)
        if statuses is not None:
            stmt = stmt.where(Order.status.in_(list(statuses)))
        if since_ms is not None:
            stmt = stmt.where(Order.created_ms >= since_ms)
        return await self._all(self._limit(stmt, limit))

    # -- fills -----------------------------------------------------------------------------------------

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
    ) -> bool:
        """Store a trade; True when new, False when (venue, market, symbol, trade id) was already there."""
        row = fill_row(
            venue=venue,
            market=market,
            symbol=symbol,
            venue_trade_id=venue_trade_id,
            side=side,
            quantity=quantity,
            price=price,
            fee=fee,
            ts_ms=ts_ms,
            fee_asset=fee_asset,
            is_maker=is_maker,
            client_order_id=client_order_id,
            venue_order_id=venue_order_id,
            pair_id=pair_id,
        )
        stmt = self._insert(Fill.__table__).on_conflict_do_nothing().returning(Fill.__table__.c.id)
        return await self._run(_inserted, stmt, row)

    async def list_fills(
        self,
        *,
        symbol: str | None = None,
        pair_id: int | None = None,
        client_order_id: str | None = None,
        since_ms: int | None = None,
        limit: int | None = None,
        venue: str | None = None,
    ) -> list[Fill]:
        """Fills oldest first (by trade time)."""
        return await self._all(
            queries.fills_query(
                symbol=symbol,
                pair_id=pair_id,
                client_order_id=client_order_id,
                since_ms=since_ms,
                limit=limit,
                venue=venue,
            )
        )

    # -- transfers -------------------------------------------------------------------------------------

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
    ) -> bool:
        """Store a transfer; True when new, False when its client id (or venue tranId) is known."""
        row = transfer_row(
            client_id=client_id,
            venue=venue,
            asset=asset,
            amount=amount,
            from_wallet=from_wallet,
            to_wallet=to_wallet,
            now_ms=now_ms,
            status=status,
            venue_tran_id=venue_tran_id,
        )
        table = Transfer.__table__
        return await self._run(_inserted, self._insert(table).on_conflict_do_nothing().returning(table.c.id), row)

    async def update_transfer(
        self,
        client_id: str,
        *,
        now_ms: int,
        status: TransferStatus | None = None,
        venue_tran_id: str | None = None,
        error: str | None = None,
        count_attempt: bool = False,
    ) -> Transfer:
        """Record progress of a transfer (status, the venue's tranId, last error, attempts)."""
        values: dict[str, Any] = {"updated_ms": now_ms}
        if status is not None:
            values["status"] = status
        if venue_tran_id is not None:
            values["venue_tran_id"] = str(venue_tran_id)
        if error is not None:
            values["last_error"] = error
        stmt = _progress(Transfer.__table__, client_id, values, count_attempt)

        def progress(conn: Connection) -> Transfer:
            row = conn.execute(stmt).one_or_none()
            if row is None:
                raise KeyError(f"no transfer with client id {client_id!r}")
            return _model(Transfer, row)

        return await self._run(progress)

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
    ) -> None:
        """A transfer's outcome in ONE transaction: its row (``update_transfer``), its intent
        (``set_intent_status``) and ``events``."""
        values: dict[str, Any] = {"updated_ms": now_ms, "status": status}
        if venue_tran_id is not None:
            values["venue_tran_id"] = str(venue_tran_id)
        if error is not None:
            values["last_error"] = error
        intent_values: dict[str, Any] = {"status": intent_status, "updated_ms": now_ms}
        if error is not None:
            intent_values["last_error"] = error
        stmts = [
            (_progress(Transfer.__table__, client_id, values, False), "transfer"),
            (_progress(Intent.__table__, client_id, intent_values, False), "intent"),
        ]
        event_rows = [e.row() for e in events]

        def write(conn: Connection) -> None:
            for stmt, what in stmts:
                if conn.execute(stmt).one_or_none() is None:
                    raise KeyError(f"no {what} with client id {client_id!r}")
            if event_rows:
                conn.execute(Event.__table__.insert(), event_rows)

        async with self._event_lock:
            await self._run(write)

    async def get_transfer(self, client_id: str) -> Transfer | None:
        return await self._one_or_none(select(Transfer).where(Transfer.client_id == client_id))

    async def list_transfers(
        self,
        *,
        statuses: Iterable[TransferStatus] | None = None,
        since_ms: int | None = None,
        limit: int | None = None,
        venue: str | None = None,
    ) -> list[Transfer]:
        """Transfers oldest first."""
        stmt = select(Transfer).order_by(Transfer.created_ms, Transfer.id)
        if venue is not None:
            stmt = stmt.where(Transfer.venue == venue)
        if statuses is not None:
            stmt = stmt.where(Transfer.status.in_(list(statuses)))
        if since_ms is not None:
            stmt = stmt.where(Transfer.created_ms >= since_ms)
        return await self._all(self._limit(stmt, limit))

    # -- funding ---------------------------------------------------------------------------------------

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
    ) -> bool:
        """Store a funding settlement and add it to the pair's ``funding_earned``; True when it changed
        the ledger.

        The same (venue, account, symbol, funding time) twice changes nothing and returns False, except
        that a venue ``income`` record replaces an earlier ``computed`` estimate (the pair total follows).
        """
        payment = FundingRecord(
            venue, account, symbol, funding_time_ms, amount, source, now_ms, rate, position_size, asset, pair_id
        )
        return await self._run(self._record_funding, payment)

    async def record_funding_payments(self, payments: Sequence[FundingRecord]) -> int:
        """``record_funding_payment`` for many settlements in ONE transaction (a backtest catching up
        on days of funding); returns how many changed the ledger. Same rules, row by row, in order."""
        if not payments:
            return 0
        return await self._run(self._record_fundings, payments)

    def _record_fundings(self, conn: Connection, payments: Sequence[FundingRecord]) -> int:
        # Settlements the ledger has not seen (the usual case) go in with ONE multi-row statement and
        # one pair update each; any already there (or repeated in the batch) take the row-by-row rules.
        keys = {(p.venue, p.account, p.symbol, p.funding_time_ms) for p in payments}
        lo = min(p.funding_time_ms for p in payments)
        hi = max(p.funding_time_ms for p in payments)
        t = FundingPayment.__table__
        rows = conn.execute(
            select(t.c.venue, t.c.account, t.c.symbol, t.c.funding_time_ms).where(
                t.c.funding_time_ms >= lo, t.c.funding_time_ms <= hi
            )
        )
        seen = {tuple(r) for r in rows if tuple(r) in keys}
        fresh: list[FundingRecord] = []
        later: list[FundingRecord] = []
        for p in payments:
            key = (p.venue, p.account, p.symbol, p.funding_time_ms)
            (later if key in seen else fresh).append(p)
            seen.add(key)
        changed = 0
        if fresh:
            conn.execute(self._insert(t), [p.row() for p in fresh])
            per_pair: dict[int, Decimal] = {}
            for p in fresh:
                if p.pair_id is not None:
                    per_pair[p.pair_id] = per_pair.get(p.pair_id, ZERO) + p.amount
            for pair_id, amount in sorted(per_pair.items()):
                self._add_pair_funding(conn, pair_id, amount)
            changed += len(fresh)
        for payment in later:
            changed += self._record_funding(conn, payment)
        return changed

    def _record_funding(self, conn: Connection, p: FundingRecord) -> bool:
        table = FundingPayment.__table__
        stmt = self._insert(table).values(**p.row()).on_conflict_do_nothing().returning(table.c.id)
        if conn.execute(stmt).scalar_one_or_none() is not None:
            self._add_pair_funding(conn, p.pair_id, p.amount)
            return True
        if p.source != FundingSource.INCOME:
            return False
        existing = conn.execute(
            select(table)
            .where(
                table.c.venue == p.venue,
                table.c.account == p.account,
                table.c.symbol == p.symbol,
                table.c.funding_time_ms == p.funding_time_ms,
            )
            .with_for_update()
        ).one()
        if existing.source != FundingSource.COMPUTED:
            return False
        values: dict[str, Any] = {"amount": p.amount, "source": FundingSource.INCOME, "recorded_ms": p.now_ms}
        if p.rate is not None:
            values["rate"] = p.rate
        if p.position_size is not None:
            values["position_size"] = p.position_size
        pair_id = existing.pair_id
        if pair_id is None:
            values["pair_id"] = pair_id = p.pair_id
        conn.execute(update(table).where(table.c.id == existing.id).values(**values))
        self._add_pair_funding(conn, pair_id, p.amount - existing.amount)
        return True

    def _add_pair_funding(self, conn: Connection, pair_id: int | None, amount: Decimal) -> None:
        """Add to a pair's ``funding_earned`` (read, add in Python, write: money is text on SQLite)."""
        if pair_id is None or amount == 0:
            return
        pairs = Pair.__table__
        earned = conn.execute(
            select(pairs.c.funding_earned).where(pairs.c.id == pair_id).with_for_update()
        ).scalar_one_or_none()
        if earned is None:
            raise KeyError(f"no pair with id {pair_id}")
        conn.execute(update(pairs).where(pairs.c.id == pair_id).values(funding_earned=earned + amount))

    async def list_funding_payments(
        self,
        symbol: str | None = None,
        since_ms: int | None = None,
        *,
        until_ms: int | None = None,
        pair_id: int | None = None,
        venue: str | None = None,
        limit: int | None = None,
    ) -> list[FundingPayment]:
        """Funding payments oldest first; ``since_ms``/``until_ms`` bound the funding time [since, until)."""
        return await self._all(
            queries.funding_payments_query(
                symbol, since_ms, until_ms=until_ms, pair_id=pair_id, venue=venue, limit=limit
            )
        )

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
    ) -> bool:
        """Store an observed rate; True when the ledger changed.

        A settled rate is written once. A predicted rate for the same funding time is overwritten by a
        newer observation (by ``observed_ms``), so the row always holds the latest prediction.
        """
        table = FundingRate.__table__
        stmt = self._insert(table).values(
            venue=venue,
            symbol=symbol,
            funding_time_ms=funding_time_ms,
            rate=rate,
            kind=kind,
            interval_hours=interval_hours,
            observed_ms=observed_ms,
        )
        key = [table.c.venue, table.c.symbol, table.c.funding_time_ms, table.c.kind]
        if kind == RateKind.PREDICTED:
            ex = stmt.excluded
            stmt = stmt.on_conflict_do_update(
                index_elements=key,
                set_={
                    "rate": ex.rate,
                    "interval_hours": func.coalesce(ex.interval_hours, table.c.interval_hours),
                    "observed_ms": ex.observed_ms,
                },
                where=ex.observed_ms > table.c.observed_ms,
            )
        else:
            stmt = stmt.on_conflict_do_nothing(index_elements=key)
        return await self._run(_inserted, stmt.returning(table.c.id))

    async def record_funding_rates(self, rates: Sequence[Mapping[str, Any]]) -> None:
        """``record_funding_rate`` for many rows (its keyword arguments, one mapping each) in one
        transaction and one statement per kind: a scan's predictions, written together."""
        if rates:
            await self.record_scan(rates, ())

    async def record_scan(self, rates: Sequence[Mapping[str, Any]], events: Sequence[EventRecord]) -> None:
        """A scan's funding predictions (as ``record_funding_rates``) and its decisions (``add_events``, in
        order) in ONE transaction: what the scan saw and decided, committed before it trades."""
        if not rates and not events:
            return
        stmts = self._rate_statements(rates)
        if events:
            stmts.append((Event.__table__.insert(), [e.row() for e in events]))

        def write(conn: Connection) -> None:
            for stmt, rows in stmts:
                conn.execute(stmt, rows)

        async with self._event_lock:
            await self._run(write)

    def _rate_statements(self, rates: Sequence[Mapping[str, Any]]) -> list[tuple[Any, list[dict[str, Any]]]]:
        """The upserts of ``record_funding_rates``: one statement per kind, with its rows."""
        table = FundingRate.__table__
        key = [table.c.venue, table.c.symbol, table.c.funding_time_ms, table.c.kind]
        by_kind: dict[RateKind, list[dict[str, Any]]] = {}
        for r in rates:
            by_kind.setdefault(RateKind(r["kind"]), []).append({"interval_hours": None, **r})
        stmts = []
        for kind, rows in by_kind.items():
            stmt = self._insert(table)
            if kind == RateKind.PREDICTED:
                ex = stmt.excluded
                stmt = stmt.on_conflict_do_update(
                    index_elements=key,
                    set_={
                        "rate": ex.rate,
                        "interval_hours": func.coalesce(ex.interval_hours, table.c.interval_hours),
                        "observed_ms": ex.observed_ms,
                    },
                    where=ex.observed_ms > table.c.observed_ms,
                )
            else:
                stmt = stmt.on_conflict_do_nothing(index_elements=key)
            stmts.append((stmt, rows))
        return stmts

    async def funding_rates(
        self,
        symbol: str,
        *,
        venue: str | None = None,
        kind: RateKind | None = None,
        since_ms: int | None = None,
        until_ms: int | None = None,
        limit: int | None = None,
    ) -> list[FundingRate]:
        """Observed rates of ``symbol`` by funding time, oldest first; [since_ms, until_ms)."""
        return await self._all(
            queries.funding_rates_query(
                symbol, venue=venue, kind=kind, since_ms=since_ms, until_ms=until_ms, limit=limit
            )
        )

    # -- balances --------------------------------------------------------------------------------------

    async def record_balance_snapshot(
        self, *, venue: str, wallet: Wallet, ts_ms: int, balances: Mapping[str, AssetBalance]
    ) -> int:
        """Store one wallet as seen at ``ts_ms`` (one row per asset); returns the number of new rows."""
        return await self.record_balance_snapshots([(venue, wallet, ts_ms, balances)])

    async def record_balance_snapshots(
        self, snapshots: Sequence[tuple[str, Wallet, int, Mapping[str, AssetBalance]]]
    ) -> int:
        """Many (venue, wallet, ts_ms, balances) snapshots in ONE transaction; returns the new rows."""
        table = BalanceSnapshot.__table__
        rows: list[dict[str, Any]] = [
            {
                "venue": venue,
                "wallet": wallet,
                "asset": asset,
                "free": b.free,
                "used": b.used,
                "total": b.total,
                "ts_ms": ts_ms,
            }
            for venue, wallet, ts_ms, balances in snapshots
            for asset, b in sorted(balances.items())
        ]
        if not rows:
            return 0

        def insert_fresh(conn: Connection) -> int:
            # One multi-row insert of the rows not stored yet (the key is venue, wallet, asset, ts_ms).
            t = table.c
            lo, hi = min(r["ts_ms"] for r in rows), max(r["ts_ms"] for r in rows)
            have = conn.execute(select(t.venue, t.wallet, t.asset, t.ts_ms).where(t.ts_ms >= lo, t.ts_ms <= hi))
            seen = {(r[0], Wallet(r[1]), r[2], r[3]) for r in have}
            fresh = []
            for row in rows:
                key = (row["venue"], Wallet(row["wallet"]), row["asset"], row["ts_ms"])
                if key not in seen:
                    seen.add(key)
                    fresh.append(row)
            if fresh:
                conn.execute(self._insert(table), fresh)
            return len(fresh)

        return await self._run(insert_fresh)

    async def latest_balances(self, venue: str | None = None) -> list[BalanceSnapshot]:
        """The most recent snapshot of each (venue, wallet): all its asset rows, by venue, wallet, asset."""
        return await self._all(queries.latest_balances_query(venue))

    # -- controls --------------------------------------------------------------------------------------

    async def controls(self) -> list[Control]:
        """The controls in force and the requests waiting (the active rows), oldest first."""
        stmt = select(Control).where(Control.status == ControlStatus.ACTIVE).order_by(Control.id)
        return await self._all(stmt)

    async def control_history(self, kinds: Iterable[ControlKind] | None = None, *, limit: int = 10) -> list[Control]:
        """Rows no longer in force (done, cleared), newest change first."""
        stmt = select(Control).where(Control.status != ControlStatus.ACTIVE)
        if kinds is not None:
            stmt = stmt.where(Control.kind.in_(list(kinds)))
        return await self._all(stmt.order_by(Control.updated_ms.desc(), Control.id.desc()).limit(limit))

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
    ) -> tuple[Control, bool]:
        """Put a control in force (or file a request) with its event, in one transaction.

        Returns (the active row, True) when this changed anything; (the row already in force, False) when
        the same value (and pair) was, and then nothing is written. A different value replaces the row.
        """
        table, insert_event = Control.__table__, _insert_event()

        def put(conn: Connection) -> tuple[Control, bool]:
            current = _active_control(conn, kind, symbol)
            if current is not None and current.value == value and current.pair_id == pair_id:
                return current, False
            if current is not None:
                _move_control(conn, current.id, ControlStatus.CLEARED, now_ms, "replaced by a newer value")
            row = {
                "kind": kind,
                "symbol": symbol,
                "pair_id": pair_id,
                "status": ControlStatus.ACTIVE,
                "value": value,
                "reason": reason,
                "source": source,
                "created_ms": now_ms,
                "updated_ms": now_ms,
            }
            new = _model(Control, conn.execute(table.insert().returning(*table.c), row).one())
            conn.execute(insert_event, event_row(new, on=True, ts_ms=now_ms, source=source))
            return new, True

        async with self._event_lock:
            try:
                return await self._run(put)
            except IntegrityError:  # another writer put the same control in force first: read theirs
                return await self._run(put)

    async def clear_control(
        self, kind: ControlKind, *, now_ms: int, source: str, symbol: str = ACCOUNT, note: str | None = None
    ) -> Control | None:
        """Switch a control off (or withdraw a request) with its event; None when none was in force."""
        return await self._end_control(kind, symbol, None, ControlStatus.CLEARED, now_ms, source, note)

    async def finish_request(self, control: Control | int, *, now_ms: int, source: str, note: str) -> Control | None:
        """Mark an active request done, with ``note`` saying what was done; None when it was no longer
        active (withdrawn or finished meanwhile)."""
        control_id = control if isinstance(control, int) else control.id
        return await self._end_control(None, ACCOUNT, control_id, ControlStatus.DONE, now_ms, source, note)

    async def _end_control(
        self,
        kind: ControlKind | None,
        symbol: str,
        control_id: int | None,
        status: ControlStatus,
        now_ms: int,
        source: str,
        note: str | None,
    ) -> Control | None:
        insert_event = _insert_event()

        def end(conn: Connection) -> Control | None:
            if control_id is not None:
                stmt = select(Control).where(Control.id == control_id, Control.status == ControlStatus.ACTIVE)
                current = _model_or_none(conn, stmt.with_for_update())
            else:
                assert kind is not None
                current = _active_control(conn, kind, symbol)
            if current is None:
                return None
            moved = _move_control(conn, current.id, status, now_ms, note)
            conn.execute(insert_event, event_row(moved, on=False, ts_ms=now_ms, source=source))
            return moved

        async with self._event_lock:
            return await self._run(end)

    # -- events ----------------------------------------------------------------------------------------

    async def add_event(
        self,
        kind: EventKind,
        message: str,
        *,
        ts_ms: int,
        pair_id: int | None = None,
        symbol: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> int:
        """Append to the operator log; returns the event id (ids only grow). Decimals in ``details`` are
        stored as strings. Never put secrets in messages or details."""
        row = EventRecord(kind, message, ts_ms, pair_id, symbol, details).row()
        stmt = _insert_event()
        async with self._event_lock:
            return int(await self._run(lambda conn: conn.execute(stmt, row).scalar_one()))

    async def add_events(self, events: Sequence[EventRecord]) -> None:
        """``add_event`` for many entries in ONE transaction, in order (ids still only grow)."""
        if not events:
            return
        rows = [e.row() for e in events]
        stmt = Event.__table__.insert()
        async with self._event_lock:
            await self._run(lambda conn: conn.execute(stmt, rows))

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
    ) -> list[Event]:
        """Events matching every given filter, by id (oldest first unless ``newest_first``).

        ``tail -f`` style: poll with ``after_id`` = the last id seen. "Last N": ``limit=N,
        newest_first=True``.
        """
        return await self._all(
            queries.events_query(
                since_ms=since_ms,
                after_id=after_id,
                kinds=kinds,
                symbol=symbol,
                pair_id=pair_id,
                limit=limit,
                newest_first=newest_first,
                message_prefix=message_prefix,
            )
        )
