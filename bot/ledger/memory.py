"""``MemoryLedger``: a backtest's recorder. The ``Ledger`` interface over Python dicts, flushed in bulk.

Why: a backtest is one process with one writer, and each ledger transaction through SQLAlchemy and a
driver costs more than the simulated venue call it records. So the backtest records in memory with the
same rules as ``Ledger`` (the natural keys of ``bot.ledger.models`` keep facts idempotent; the same
upsert, stale-update and funding rules; the same ids, given in the order SQLite would give them) and
writes the rows to its SQLite file with SQLAlchemy Core bulk inserts (``insert(table)``, executemany),
periodically (every ``flush_rows`` new or changed rows) and on ``flush()`` / ``close()``. The file's
schema comes from the migrations, so ``fundbot report`` reads a backtest's ledger like a daemon's.

What stays in memory: the tables the engine, executor, treasury and reconciler read back while they
run (pairs, intents, orders, transfers, controls) are kept whole and answered from memory. The
append-only facts (fills, funding payments and rates, balance snapshots, events) leave memory at each
flush; a read of one of them first flushes, then runs ``Ledger``'s own query (``bot.ledger.queries``)
on the file, and a natural key not found among the unflushed rows is looked up in the file.

SQLite file ledgers only; the daemon (live and dry-run) keeps ``Ledger``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Generic, TypeVar

from sqlalchemy import Engine, Enum, Table, bindparam, create_engine, event, func, insert, select, update
from sqlalchemy.orm import Session
from sqlalchemy.types import JSON, Boolean

from bot.domain import ZERO, Leg, PairState, Side
from bot.domain import perp_symbol as linear_perp_of
from bot.ledger import db, queries
from bot.ledger.controls import event_row
from bot.ledger.models import (
    ACCOUNT,
    OPEN_INTENT_STATUSES,
    BalanceSnapshot,
    Base,
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
from bot.ledger.outage import OutageTracker
from bot.ledger.repository import AssetBalance, EventRecord, FundingRecord, IntentRecord
from bot.ledger.rows import order_row, transfer_row
from bot.ledger.types import Money, json_dumps, to_money

M = TypeVar("M", bound=Base)
Row = dict[str, Any]
Key = tuple[Any, ...]

DEFAULT_FLUSH_ROWS = 20_000  # rows held before a flush: a few MB, and few enough statements per run


class LedgerConflict(ValueError):
    """A write would break a unique key of the ledger (the SQL ledger raises IntegrityError there)."""


def _converter(column: Any) -> Callable[[Any], Any] | None:
    """How a value of ``column`` comes back from the database: money quantized as NUMERIC(38, 18),
    enums as their StrEnum, JSON as a fresh copy with Decimals as strings, booleans as bool."""
    kind = column.type
    if isinstance(kind, Money):
        return to_money
    if isinstance(kind, Enum) and kind.enum_class is not None:
        return kind.enum_class  # StrEnum(value): refuses unknown values
    if isinstance(kind, JSON):
        return lambda v: json.loads(json_dumps(v))
    if isinstance(kind, Boolean):
        return bool
    return None


class _Writes:
    """Rows added or changed since the last flush, over every table (at least the pending rows: a row
    changed twice counts twice), so deciding to flush costs one comparison per write."""

    def __init__(self) -> None:
        self.count = 0


class _Table(Generic[M]):
    """One table's rows in memory, with what the next flush must insert or update."""

    def __init__(self, model: type[M], resident: bool, writes: _Writes) -> None:
        self.model = model
        self.writes = writes
        self.table: Table = model.__table__
        table = self.table
        self.resident = resident  # kept whole (read back while running) or dropped at each flush
        self.columns = [c.name for c in table.columns]
        self.convert = {c.name: f for c in table.columns if (f := _converter(c)) is not None}
        self.rows: dict[int, Row] = {}  # resident: every row; otherwise: the rows not yet flushed
        self.new: list[int] = []  # ids not yet in the file, in insert order
        self.changed: set[int] = set()  # ids in the file whose row changed since
        self.next_id = 1  # SQLite's INTEGER PRIMARY KEY: one more than the largest id (rows never deleted)
        self.flushed = 0  # rows written to the file
        self.snapshots: dict[int, M] = {}  # the model object of each row as it is now (see ``obj``)

    def row(self, values: Mapping[str, Any]) -> Row:
        """A full row (absent columns None) with values as the database would return them."""
        out = dict.fromkeys(self.columns)
        for name, value in values.items():
            if name not in out:
                raise KeyError(f"{self.table.name} has no column {name!r}")
            f = self.convert.get(name)
            out[name] = value if value is None or f is None else f(value)
        return out

    def add(self, values: Mapping[str, Any]) -> Row:
        row = self.row(values)
        row["id"] = self.next_id
        self.next_id += 1
        self.writes.count += 1
        self.rows[row["id"]] = row
        self.new.append(row["id"])
        return row

    def obj(self, row: Row) -> M:
        """``row`` as a model object, as ``Ledger`` returns it: a snapshot (a later change to the row makes
        a new object; one already handed out keeps the values it had). Readers share a snapshot until the
        row changes, so, as ``Ledger``'s docs ask, treat returned objects as read-only."""
        snap = self.snapshots.get(row["id"])
        if snap is None:
            snap = self.snapshots[row["id"]] = self.model(**row)
        return snap

    def set(self, row: Row, values: Mapping[str, Any]) -> Row:
        """Change ``row`` in place (the stored one); marked for an UPDATE if it is already in the file."""
        self.snapshots.pop(row["id"], None)
        self.writes.count += 1
        for name, value in values.items():
            f = self.convert.get(name)
            row[name] = value if value is None or f is None else f(value)
        if row["id"] <= self.flushed_max:
            self.changed.add(row["id"])
        return row

    @property
    def flushed_max(self) -> int:
        """The largest id in the file (ids are given in order and flushed in order)."""
        return self.next_id - 1 - len(self.new)

    @property
    def pending(self) -> int:
        return len(self.new) + len(self.changed)


class MemoryLedger:
    """The ``Ledger`` interface in memory, flushed to a SQLite ledger file. Open with ``await
    MemoryLedger.open(url)`` on a new or empty file; ``close()`` flushes."""

    def __init__(self, file: Engine, *, flush_rows: int = DEFAULT_FLUSH_ROWS) -> None:
        if flush_rows < 1:
            raise ValueError(f"flush_rows must be at least 1, got {flush_rows}")
        self._file = file
        self.flush_rows = flush_rows
        self.flushes = 0
        self.outages = OutageTracker()  # the interface the daemon sets a clock on; nothing here times out
        self._writes = _Writes()
        # kept whole: read back while the backtest runs
        self._pairs = _Table(Pair, resident=True, writes=self._writes)
        self._intents = _Table(Intent, resident=True, writes=self._writes)
        self._orders = _Table(Order, resident=True, writes=self._writes)
        self._transfers = _Table(Transfer, resident=True, writes=self._writes)
        self._controls = _Table(Control, resident=True, writes=self._writes)
        # append-only facts: dropped at each flush
        self._balances = _Table(BalanceSnapshot, resident=False, writes=self._writes)
        facts: list[_Table[Any]] = [
            _Table(Fill, resident=False, writes=self._writes),
            _Table(FundingPayment, resident=False, writes=self._writes),
            _Table(FundingRate, resident=False, writes=self._writes),
            self._balances,
            _Table(Event, resident=False, writes=self._writes),
        ]
        # in flush order: pairs first (every pair_id refers to one)
        tables: list[_Table[Any]] = [self._pairs, self._intents, self._orders, self._transfers, self._controls, *facts]
        self._t: dict[str, _Table[Any]] = {t.table.name: t for t in tables}
        self._events = self._t["events"]
        # live pairs and open intents (what the loop asks for at every step), and each pair's client ids
        self._live_pairs: dict[int, None] = {}
        self._open_intents: dict[int, None] = {}
        self._ids_of_pair: dict[int, tuple[set[int], set[int]]] = {}  # pair id -> (order row ids, intent row ids)
        # natural keys -> id, for the resident tables (all rows) and the others (rows not yet flushed)
        self._active_pair: dict[tuple[str, str], int] = {}
        self._intent_by_client: dict[str, int] = {}
        self._order_by_client: dict[str, int] = {}
        self._transfer_by_client: dict[str, int] = {}
        self._transfer_by_tran: dict[tuple[str, str], int] = {}
        self._active_control: dict[tuple[ControlKind, str], int] = {}
        self._keys: dict[str, dict[Key, int]] = {name: {} for name, t in self._t.items() if not t.resident}

    @classmethod
    async def open(cls, url: str, *, flush_rows: int | None = None) -> MemoryLedger:
        """Migrate the SQLite file at ``url`` to head (as ``Ledger.open`` does) and record into it; the
        file must hold no rows yet (the ids given here start at 1)."""
        u = db.parse_url(url)
        path = db.sqlite_file(u)
        if path is None:
            raise db.LedgerDatabaseError(f"a memory ledger flushes to a SQLite file; got {db.safe_url(u)}")
        await db.upgrade(u)
        rows = DEFAULT_FLUSH_ROWS if flush_rows is None else flush_rows
        ledger = cls(_file_engine(f"sqlite:///{path.as_posix()}"), flush_rows=rows)
        with ledger._file.connect() as conn:
            for name, t in ledger._t.items():
                if conn.execute(select(func.count()).select_from(t.table)).scalar_one():
                    ledger._file.dispose()
                    raise db.LedgerDatabaseError(f"a memory ledger needs an empty ledger file; {path} has {name}")
        return ledger

    async def close(self) -> None:
        self.flush()
        self._file.dispose()

    async def __aenter__(self) -> MemoryLedger:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- flushing --------------------------------------------------------------------------------------

    def pending_rows(self) -> int:
        """Rows written or changed since the last flush."""
        return sum(t.pending for t in self._t.values())

    def resident_rows(self) -> dict[str, int]:
        """Rows held in memory per table (what a flush bounds for the append-only facts)."""
        return {name: len(t.rows) for name, t in self._t.items()}

    def flush(self) -> int:
        """Write every changed row (bulk UPDATE) and new row (bulk INSERT) to the file in ONE transaction,
        pairs first (the others refer to them); drop the flushed append-only rows. Returns rows written."""
        self._writes.count = 0
        if not self.pending_rows():
            return 0
        written = 0
        with self._file.begin() as conn:
            for t in self._t.values():
                # changes first: a pair (or control) closed since the last flush leaves the partial unique
                # index of active rows before the new active one for the same symbol comes in
                if t.changed:
                    stmt = update(t.table).where(t.table.c.id == bindparam("b_id"))
                    params = [
                        {"b_id": i, **{k: v for k, v in t.rows[i].items() if k != "id"}} for i in sorted(t.changed)
                    ]
                    conn.execute(stmt, params)
                if t.new:
                    conn.execute(insert(t.table), [t.rows[i] for i in t.new])
                written += t.pending
        for name, t in self._t.items():
            t.flushed += len(t.new)
            t.new.clear()
            t.changed.clear()
            t.snapshots.clear()  # rebuilt when read again: memory for those only of rows in use
            if not t.resident:
                t.rows.clear()
                self._keys[name].clear()
        self.flushes += 1
        return written

    def _maybe_flush(self) -> None:
        if self._writes.count >= self.flush_rows:
            self.flush()

    def _read(self, stmt: Any) -> list[Any]:
        """A read of flushed facts: flush, then ``stmt`` on the file, rows as detached model objects."""
        self.flush()
        with Session(self._file) as s:
            return list(s.scalars(stmt))

    def _stored(self, name: str, key: Key, where: Mapping[str, Any]) -> Row | None:
        """The row of an append-only table with natural ``key``: unflushed, or else in the file."""
        t = self._t[name]
        found = self._keys[name].get(key)
        if found is not None:
            return t.rows[found]
        if not t.flushed:
            return None
        c = t.table.c
        with self._file.connect() as conn:
            hit = conn.execute(select(t.table).where(*(c[k] == v for k, v in where.items()))).one_or_none()
        return None if hit is None else dict(hit._mapping)

    def _add_fact(self, name: str, key: Key, values: Mapping[str, Any]) -> Row:
        row = self._t[name].add(values)
        self._keys[name][key] = row["id"]
        return row

    def _update_file(self, name: str, row_id: int, values: Mapping[str, Any]) -> None:
        """Change a fact already flushed (a predicted rate moving, income replacing an estimate)."""
        self.flush()  # the values may refer to rows not yet in the file
        t = self._t[name]
        with self._file.begin() as conn:
            conn.execute(update(t.table).where(t.table.c.id == row_id).values(**t.row(values) | {"id": row_id}))

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
        """``Ledger.upsert_pair``: create the active pair of ``venue``/``symbol`` or update given fields."""
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
        found = self._active_pair.get((venue, symbol))
        if found is not None:
            extra = {"perp_symbol": perp_symbol} if perp_symbol is not None else {}
            row = self._pairs.set(self._pairs.rows[found], values | extra)
        else:
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
            row = self._pairs.add(new)
        self._index_pair(row)
        self._maybe_flush()
        return self._pairs.obj(row)

    def _index_pair(self, row: Row) -> None:
        key = (row["venue"], row["symbol"])
        if row["state"] is PairState.CLOSED:
            if self._active_pair.get(key) == row["id"]:
                del self._active_pair[key]
            self._live_pairs.pop(row["id"], None)
        else:
            self._active_pair[key] = row["id"]
            self._live_pairs[row["id"]] = None  # a pair is created live and never reopens: id order holds

    async def get_pair(self, pair_id: int) -> Pair | None:
        row = self._pairs.rows.get(pair_id)
        return None if row is None else self._pairs.obj(row)

    async def active_pair(self, venue: str, symbol: str) -> Pair | None:
        """The pair of ``venue``/``symbol`` that is not closed, if any."""
        found = self._active_pair.get((venue, symbol))
        return None if found is None else self._pairs.obj(self._pairs.rows[found])

    async def list_pairs(self, states: Iterable[PairState] | None = None, *, venue: str | None = None) -> list[Pair]:
        wanted = None if states is None else {PairState(s) for s in states}
        rows = self._pairs.rows
        among = rows if wanted is None or PairState.CLOSED in wanted else self._live_pairs
        return [
            self._pairs.obj(r)
            for r in (rows[i] for i in among)
            if (wanted is None or r["state"] in wanted) and (venue is None or r["venue"] == venue)
        ]

    async def set_pair_state(self, pair_id: int, state: PairState, *, now_ms: int, note: str | None = None) -> Pair:
        """Move a pair to ``state``; closed is final (a new position is a new pair)."""
        row = self._pairs.rows.get(pair_id)
        if row is None:
            raise KeyError(f"no pair with id {pair_id}")
        state = PairState(state)
        if row["state"] == PairState.CLOSED and state != PairState.CLOSED:
            raise ValueError(f"pair {pair_id} ({row['symbol']}) is closed; open a new pair instead")
        values: dict[str, Any] = {"updated_ms": now_ms}
        if row["state"] != state:
            values["state"] = state
            if state == PairState.CLOSED:
                values["closed_ms"] = now_ms
        if note is not None:
            values["note"] = note
        self._pairs.set(row, values)
        self._index_pair(row)
        self._maybe_flush()
        return self._pairs.obj(row)

    def _add_pair_funding(self, pair_id: int | None, amount: Decimal) -> None:
        if pair_id is None or amount == 0:
            return
        row = self._pairs.rows.get(pair_id)
        if row is None:
            raise KeyError(f"no pair with id {pair_id}")
        self._pairs.set(row, {"funding_earned": row["funding_earned"] + amount})

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
        """Write the intent for ``client_id``; for a known client id return the stored row unchanged."""
        found = self._intent_by_client.get(client_id)
        if found is None:
            self._check_pair(pair_id)
            row = self._intents.add(
                {
                    "client_id": client_id,
                    "kind": kind,
                    "pair_id": pair_id,
                    "payload": dict(payload or {}),
                    "status": IntentStatus.PENDING,
                    "attempts": 0,
                    "created_ms": now_ms,
                    "updated_ms": now_ms,
                }
            )
            self._intent_by_client[client_id] = row["id"]
            self._open_intents[row["id"]] = None
            if pair_id is not None:
                self._client_ids(pair_id)[1].add(row["id"])
            self._maybe_flush()
        else:
            row = self._intents.rows[found]
        if row["kind"] != kind:
            raise ValueError(f"client id {client_id!r} already belongs to a {row['kind']} intent, not {kind}")
        return self._intents.obj(row)

    def _check_pair(self, pair_id: int | None) -> None:
        """The foreign key every pair_id column has: refused at once, not at the next flush."""
        if pair_id is not None and pair_id not in self._pairs.rows:
            raise LedgerConflict(f"no pair with id {pair_id}")

    async def get_intent(self, client_id: str) -> Intent | None:
        found = self._intent_by_client.get(client_id)
        return None if found is None else self._intents.obj(self._intents.rows[found])

    async def record_order_outcome(
        self,
        order: Mapping[str, Any],
        events: Sequence[EventRecord],
        fills: Sequence[tuple[Mapping[str, Any], EventRecord]],
        intent: tuple[str, IntentStatus, int] | None = None,
    ) -> list[bool]:
        """An order, its events, its fills (each new one with its event) and its intent's status, as
        ``Ledger.record_order_outcome``."""
        await self.record_order(**order)
        await self.add_events(events)
        new = []
        for fill, fill_event in fills:
            new.append(await self.record_fill(**fill))
            if new[-1]:
                await self.add_events([fill_event])
        if intent is not None:
            client_id, status, now_ms = intent
            await self.set_intent_status(client_id, status, now_ms=now_ms)
        return new

    async def write_ahead(
        self,
        intents: Sequence[IntentRecord],
        events: Sequence[EventRecord] = (),
        transfers: Sequence[Mapping[str, Any]] = (),
    ) -> list[tuple[Intent, bool]]:
        """New intents committed as ``sent`` (one attempt) with ``events`` and the rows of new transfer
        intents, as ``Ledger.write_ahead``."""
        rows = {t["client_id"]: t for t in transfers}
        out = []
        for rec in intents:
            new = rec.client_id not in self._intent_by_client
            intent = await self.create_intent(
                rec.kind, rec.client_id, now_ms=rec.now_ms, payload=rec.payload, pair_id=rec.pair_id
            )
            if new:
                intent = await self.set_intent_status(
                    rec.client_id, IntentStatus.SENT, now_ms=rec.now_ms, count_attempt=True
                )
                if rec.client_id in rows:
                    row = rows[rec.client_id]
                    if not await self.record_transfer(**row):
                        raise LedgerConflict(f"transfer {rec.client_id} already exists")
                    await self.update_transfer(
                        rec.client_id, now_ms=row["now_ms"], status=TransferStatus.SENT, count_attempt=True
                    )
            out.append((intent, new))
        await self.add_events(events)
        return out

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
        found = self._intent_by_client.get(client_id)
        if found is None:
            raise KeyError(f"no intent with client id {client_id!r}")
        row = self._intents.rows[found]
        values: dict[str, Any] = {"status": status, "updated_ms": now_ms}
        if error is not None:
            values["last_error"] = error
        if count_attempt:
            values["attempts"] = row["attempts"] + 1
        self._intents.set(row, values)
        if row["status"] in OPEN_INTENT_STATUSES:
            self._open_intents[row["id"]] = None
        else:
            self._open_intents.pop(row["id"], None)
        self._maybe_flush()
        return self._intents.obj(row)

    async def pair_client_ids(self, pair_id: int) -> list[str]:
        """Every client id the pair's orders and intents use, for picking the next action number."""
        orders, intents = self._ids_of_pair.get(pair_id, ((), ()))
        return [self._orders.rows[i]["client_order_id"] for i in sorted(orders)] + [
            self._intents.rows[i]["client_id"] for i in sorted(intents)
        ]

    def _client_ids(self, pair_id: int) -> tuple[set[int], set[int]]:
        return self._ids_of_pair.setdefault(pair_id, (set(), set()))

    async def list_intents(
        self, kinds: Iterable[IntentKind] | None = None, statuses: Iterable[IntentStatus] | None = None
    ) -> list[Intent]:
        """Intents of the given kinds and statuses (all when None), oldest first."""
        ks = None if kinds is None else {IntentKind(k) for k in kinds}
        ss = None if statuses is None else {IntentStatus(s) for s in statuses}
        rows = self._intents.rows
        among = sorted(self._open_intents) if ss is not None and ss <= set(OPEN_INTENT_STATUSES) else rows
        return [
            self._intents.obj(r)
            for r in (rows[i] for i in among)
            if (ks is None or r["kind"] in ks) and (ss is None or r["status"] in ss)
        ]

    async def open_intents(self, kinds: Iterable[IntentKind] | None = None) -> list[Intent]:
        """Intents whose outcome is not settled (pending, sent, unknown), oldest first."""
        return await self.list_intents(kinds, OPEN_INTENT_STATUSES)

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
        """Insert or update the order (``Ledger.record_order``): an update older than the stored one is
        ignored; a known venue id, pair or price is never erased."""
        found = self._order_by_client.get(client_order_id)
        if found is None:
            self._check_pair(pair_id)
            row = self._orders.add(
                order_row(
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
            )
            self._order_by_client[client_order_id] = row["id"]
            if pair_id is not None:
                self._client_ids(pair_id)[0].add(row["id"])
        else:
            row = self._orders.rows[found]
            if now_ms >= row["updated_ms"]:
                self._check_pair(pair_id)
                kept = {"venue_order_id": venue_order_id, "pair_id": pair_id, "price": price, "avg_price": avg_price}
                values = {k: row[k] if v is None else v for k, v in kept.items()}
                if pair_id is not None and pair_id != row["pair_id"]:
                    if row["pair_id"] is not None:
                        self._client_ids(row["pair_id"])[0].discard(row["id"])
                    self._client_ids(pair_id)[0].add(row["id"])
                self._orders.set(row, values | {"filled_qty": filled_qty, "status": status, "updated_ms": now_ms})
        self._maybe_flush()
        return self._orders.obj(row)

    async def get_order(self, client_order_id: str) -> Order | None:
        found = self._order_by_client.get(client_order_id)
        return None if found is None else self._orders.obj(self._orders.rows[found])

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
        ss = None if statuses is None else set(statuses)
        rows = [
            r
            for r in self._orders.rows.values()
            if (venue is None or r["venue"] == venue)
            and (symbol is None or r["symbol"] == symbol)
            and (pair_id is None or r["pair_id"] == pair_id)
            and (ss is None or r["status"] in ss)
            and (since_ms is None or r["created_ms"] >= since_ms)
        ]
        rows.sort(key=lambda r: (r["created_ms"], r["id"]))
        return [self._orders.obj(r) for r in rows[:limit]]

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
        market, trade_id = Leg(market), str(venue_trade_id)
        key = (venue, market, symbol, trade_id)
        where = {"venue": venue, "market": market, "symbol": symbol, "venue_trade_id": trade_id}
        if self._stored("fills", key, where) is not None:
            return False
        self._check_pair(pair_id)
        self._add_fact(
            "fills",
            key,
            where
            | {
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
            },
        )
        self._maybe_flush()
        return True

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
        return self._read(
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
        new = transfer_row(
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
        if client_id in self._transfer_by_client:
            return False
        if venue_tran_id is not None and (venue, str(venue_tran_id)) in self._transfer_by_tran:
            return False
        row = self._transfers.add(new)
        self._index_transfer(row)
        self._maybe_flush()
        return True

    def _index_transfer(self, row: Row) -> None:
        self._transfer_by_client[row["client_id"]] = row["id"]
        if row["venue_tran_id"] is not None:
            self._transfer_by_tran[(row["venue"], row["venue_tran_id"])] = row["id"]

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
        """A transfer's row, its intent and ``events``, as ``Ledger.settle_transfer``."""
        await self.update_transfer(client_id, now_ms=now_ms, status=status, venue_tran_id=venue_tran_id, error=error)
        await self.set_intent_status(client_id, intent_status, now_ms=now_ms, error=error)
        await self.add_events(events)

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
        found = self._transfer_by_client.get(client_id)
        if found is None:
            raise KeyError(f"no transfer with client id {client_id!r}")
        row = self._transfers.rows[found]
        values: dict[str, Any] = {"updated_ms": now_ms}
        if status is not None:
            values["status"] = status
        if venue_tran_id is not None:
            tran = str(venue_tran_id)
            other = self._transfer_by_tran.get((row["venue"], tran))
            if other is not None and other != found:
                raise LedgerConflict(f"venue transfer id {tran} already belongs to another transfer")
            values["venue_tran_id"] = tran
        if error is not None:
            values["last_error"] = error
        if count_attempt:
            values["attempts"] = row["attempts"] + 1
        self._transfers.set(row, values)
        self._index_transfer(row)
        self._maybe_flush()
        return self._transfers.obj(row)

    async def get_transfer(self, client_id: str) -> Transfer | None:
        found = self._transfer_by_client.get(client_id)
        return None if found is None else self._transfers.obj(self._transfers.rows[found])

    async def list_transfers(
        self,
        *,
        statuses: Iterable[TransferStatus] | None = None,
        since_ms: int | None = None,
        limit: int | None = None,
        venue: str | None = None,
    ) -> list[Transfer]:
        """Transfers oldest first."""
        ss = None if statuses is None else {TransferStatus(s) for s in statuses}
        rows = [
            r
            for r in self._transfers.rows.values()
            if (venue is None or r["venue"] == venue)
            and (ss is None or r["status"] in ss)
            and (since_ms is None or r["created_ms"] >= since_ms)
        ]
        rows.sort(key=lambda r: (r["created_ms"], r["id"]))
        return [self._transfers.obj(r) for r in rows[:limit]]

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
        """Store a funding settlement and add it to the pair's ``funding_earned`` (``Ledger``'s rules: a
        known key changes nothing, except that venue income replaces a computed estimate)."""
        payment = FundingRecord(
            venue, account, symbol, funding_time_ms, amount, source, now_ms, rate, position_size, asset, pair_id
        )
        changed = self._record_funding(payment)
        self._maybe_flush()
        return changed

    async def record_funding_payments(self, payments: Sequence[FundingRecord]) -> int:
        """``record_funding_payment`` for many settlements, in ``Ledger``'s order: the new ones first
        (ids in order, then one addition per pair), then the known keys row by row."""
        fresh: list[FundingRecord] = []
        later: list[FundingRecord] = []
        seen: set[Key] = set()
        for p in payments:
            key = (p.venue, p.account, p.symbol, p.funding_time_ms)
            known = key in seen or self._stored("funding_payments", key, self._payment_where(p)) is not None
            (later if known else fresh).append(p)
            seen.add(key)
        per_pair: dict[int, Decimal] = {}
        for p in fresh:
            self._check_pair(p.pair_id)
            self._add_fact("funding_payments", (p.venue, p.account, p.symbol, p.funding_time_ms), p.row())
            if p.pair_id is not None:
                per_pair[p.pair_id] = per_pair.get(p.pair_id, ZERO) + p.amount
        for pair_id, amount in sorted(per_pair.items()):
            self._add_pair_funding(pair_id, amount)
        changed = len(fresh) + sum(self._record_funding(p) for p in later)
        self._maybe_flush()
        return changed

    @staticmethod
    def _payment_where(p: FundingRecord) -> dict[str, Any]:
        return {"venue": p.venue, "account": p.account, "symbol": p.symbol, "funding_time_ms": p.funding_time_ms}

    def _record_funding(self, p: FundingRecord) -> bool:
        key = (p.venue, p.account, p.symbol, p.funding_time_ms)
        existing = self._stored("funding_payments", key, self._payment_where(p))
        if existing is None:
            self._check_pair(p.pair_id)
            self._add_fact("funding_payments", key, p.row())
            self._add_pair_funding(p.pair_id, p.amount)
            return True
        if FundingSource(p.source) != FundingSource.INCOME or existing["source"] != FundingSource.COMPUTED:
            return False
        values: dict[str, Any] = {"amount": p.amount, "source": FundingSource.INCOME, "recorded_ms": p.now_ms}
        if p.rate is not None:
            values["rate"] = p.rate
        if p.position_size is not None:
            values["position_size"] = p.position_size
        pair_id = existing["pair_id"]
        if pair_id is None:
            values["pair_id"] = pair_id = p.pair_id
        self._check_pair(pair_id)
        before = existing["amount"]
        self._set_fact("funding_payments", existing, values)  # may change ``existing`` in place
        self._add_pair_funding(pair_id, p.amount - before)
        return True

    def _set_fact(self, name: str, existing: Row, values: Mapping[str, Any]) -> None:
        """Change a stored fact: in memory while unflushed, else in the file."""
        t = self._t[name]
        if existing["id"] in t.rows:
            t.set(t.rows[existing["id"]], values)
        else:
            self._update_file(name, existing["id"], {k: v for k, v in existing.items() if k != "id"} | dict(values))

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
        return self._read(
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
        """Store an observed rate; a settled rate is written once, a predicted one follows the newest
        observation (by ``observed_ms``). True when the ledger changed."""
        kind = RateKind(kind)
        key = (venue, symbol, funding_time_ms, kind)
        where = {"venue": venue, "symbol": symbol, "funding_time_ms": funding_time_ms, "kind": kind}
        existing = self._stored("funding_rates", key, where)
        if existing is None:
            values = where | {"rate": rate, "interval_hours": interval_hours, "observed_ms": observed_ms}
            self._add_fact("funding_rates", key, values)
            self._maybe_flush()
            return True
        if kind != RateKind.PREDICTED or observed_ms <= existing["observed_ms"]:
            return False
        hours = existing["interval_hours"] if interval_hours is None else interval_hours
        self._set_fact("funding_rates", existing, {"rate": rate, "interval_hours": hours, "observed_ms": observed_ms})
        self._maybe_flush()
        return True

    async def record_funding_rates(self, rates: Sequence[Mapping[str, Any]]) -> None:
        """``record_funding_rate`` for many rows (its keyword arguments, one mapping each): a scan's
        predictions, written together (as ``Ledger.record_funding_rates``)."""
        for r in rates:
            await self.record_funding_rate(**r)

    async def record_scan(self, rates: Sequence[Mapping[str, Any]], events: Sequence[EventRecord]) -> None:
        """A scan's predictions and decisions, as ``Ledger.record_scan``."""
        await self.record_funding_rates(rates)
        await self.add_events(events)

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
        return self._read(
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
        """Many (venue, wallet, ts_ms, balances) snapshots; returns the new rows (a known key is skipped)."""
        rows = [
            {
                "venue": venue,
                "wallet": Wallet(wallet),
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
        keys = [(venue, Wallet(wallet), asset, ts_ms) for venue, wallet, ts_ms, bs in snapshots for asset in sorted(bs)]
        seen = set(k for k in keys if k in self._keys["balance_snapshots"])
        t = self._balances
        if t.flushed:  # keys already in the file: one read over the batch's time range, as Ledger does
            c = t.table.c
            lo, hi = min(k[3] for k in keys), max(k[3] for k in keys)
            with self._file.connect() as conn:
                have = conn.execute(select(c.venue, c.wallet, c.asset, c.ts_ms).where(c.ts_ms >= lo, c.ts_ms <= hi))
                seen |= {(r[0], Wallet(r[1]), r[2], r[3]) for r in have}
        fresh = 0
        for key, row in zip(keys, rows, strict=True):
            if key not in seen:
                seen.add(key)
                self._add_fact("balance_snapshots", key, row)
                fresh += 1
        self._maybe_flush()
        return fresh

    async def latest_balances(self, venue: str | None = None) -> list[BalanceSnapshot]:
        """The most recent snapshot of each (venue, wallet): all its asset rows, by venue, wallet, asset."""
        return self._read(queries.latest_balances_query(venue))

    # -- controls --------------------------------------------------------------------------------------

    async def controls(self) -> list[Control]:
        """The controls in force and the requests waiting (the active rows), oldest first."""
        return [self._controls.obj(r) for r in self._controls.rows.values() if r["status"] is ControlStatus.ACTIVE]

    async def control_history(self, kinds: Iterable[ControlKind] | None = None, *, limit: int = 10) -> list[Control]:
        """Rows no longer in force (done, cleared), newest change first."""
        ks = None if kinds is None else {ControlKind(k) for k in kinds}
        rows = [
            r
            for r in self._controls.rows.values()
            if r["status"] is not ControlStatus.ACTIVE and (ks is None or r["kind"] in ks)
        ]
        rows.sort(key=lambda r: (r["updated_ms"], r["id"]), reverse=True)
        return [self._controls.obj(r) for r in rows[:limit]]

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
        """Put a control in force (or file a request) with its event (``Ledger.set_control``)."""
        kind = ControlKind(kind)
        found = self._active_control.get((kind, symbol))
        if found is not None:
            current = self._controls.rows[found]
            if current["value"] == value and current["pair_id"] == pair_id:
                return self._controls.obj(current), False
            self._move_control(current, ControlStatus.CLEARED, now_ms, "replaced by a newer value")
        self._check_pair(pair_id)
        row = self._controls.add(
            {
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
        )
        self._active_control[(kind, symbol)] = row["id"]
        new = self._controls.obj(row)
        self._add_event_row(event_row(new, on=True, ts_ms=now_ms, source=source))
        self._maybe_flush()
        return new, True

    def _move_control(self, row: Row, status: ControlStatus, now_ms: int, note: str | None) -> Control:
        values: dict[str, Any] = {"status": status, "updated_ms": now_ms}
        if note is not None:
            values["note"] = note
        self._controls.set(row, values)
        key = (row["kind"], row["symbol"])
        if self._active_control.get(key) == row["id"]:
            del self._active_control[key]
        return self._controls.obj(row)

    async def clear_control(
        self, kind: ControlKind, *, now_ms: int, source: str, symbol: str = ACCOUNT, note: str | None = None
    ) -> Control | None:
        """Switch a control off (or withdraw a request) with its event; None when none was in force."""
        found = self._active_control.get((ControlKind(kind), symbol))
        return self._end_control(found, ControlStatus.CLEARED, now_ms, source, note)

    async def finish_request(self, control: Control | int, *, now_ms: int, source: str, note: str) -> Control | None:
        """Mark an active request done, with ``note``; None when it was no longer active."""
        control_id = control if isinstance(control, int) else control.id
        row = self._controls.rows.get(control_id)
        found = control_id if row is not None and row["status"] is ControlStatus.ACTIVE else None
        return self._end_control(found, ControlStatus.DONE, now_ms, source, note)

    def _end_control(
        self, found: int | None, status: ControlStatus, now_ms: int, source: str, note: str | None
    ) -> Control | None:
        if found is None:
            return None
        moved = self._move_control(self._controls.rows[found], status, now_ms, note)
        self._add_event_row(event_row(moved, on=False, ts_ms=now_ms, source=source))
        self._maybe_flush()
        return moved

    # -- events ----------------------------------------------------------------------------------------

    def _add_event_row(self, row: Mapping[str, Any]) -> int:
        self._check_pair(row.get("pair_id"))
        return int(self._events.add(row)["id"])

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
        """Append to the operator log; returns the event id (ids only grow)."""
        event_id = self._add_event_row(EventRecord(kind, message, ts_ms, pair_id, symbol, details).row())
        self._maybe_flush()
        return event_id

    async def add_events(self, events: Sequence[EventRecord]) -> None:
        """``add_event`` for many entries, in order."""
        for e in events:
            self._add_event_row(e.row())
        self._maybe_flush()

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
        """Events matching every given filter, by id (oldest first unless ``newest_first``)."""
        return self._read(
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


def _file_engine(url: str) -> Engine:
    """A synchronous engine on the backtest's ledger file (one process, one writer: no thread hop).
    The file is rebuilt by re-running, so commits skip fsync; foreign keys are checked as in ``Ledger``."""
    engine = create_engine(url, json_serializer=json_dumps)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={db.SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=OFF")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    return engine
