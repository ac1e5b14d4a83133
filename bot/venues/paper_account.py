"""The dry-run's paper account across restarts: which account a start carries on, and its state rebuilt
from what the ledger holds for it.

The paper account lives in the process (a ``SimExchange``); the ledger is what survives a restart. A
dry-run start resumes the newest paper account of its ledger: its balances, positions (size, entry
price, leverage and margin type), orders, trades, transfers and the ids already handed out are replayed
from the account's fills, transfers and funding payments with the simulator's own margin arithmetic
(``bot.sim.futures.SimPosition``), then handed to ``SimExchange.restore_account``. ``--fresh``, or a ledger
with no paper account yet, opens a new one. Whatever the ledger never recorded (an order that filled an
instant before a crash) did not happen to the paper account, so reconciliation finds the two agreeing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bot.domain import ZERO, Leg, exchange_id
from bot.ledger.models import (
    EventKind,
    Fill,
    FundingPayment,
    Intent,
    IntentKind,
    IntentStatus,
    Order,
    Transfer,
    TransferStatus,
)
from bot.ledger.recorder import Recorder
from bot.sim.futures import SimPosition, q8
from bot.sim.records import SimOrder, SimTrade, TransferRecord

PAPER_PREFIX = "paper-"
PAPER_OPENING = {"USDT": Decimal(100_000)}  # every paper account starts with this in its spot wallet
ACCOUNT_EVENT = "paper account "  # message prefix of the events that open or resume an account

_ORDER_STATUS = {"closed": "FILLED", "canceled": "CANCELED", "expired": "EXPIRED", "rejected": "REJECTED"}


class PaperAccountError(ValueError):
    """The ledger's paper account cannot be carried on; the message says why and what to run."""


def paper_account_name(started_ms: int) -> str:
    """A new paper account is named for the instant it opened (``paper-YYYYmmddTHHMMSSmmm``)."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(started_ms / 1000))
    return f"{PAPER_PREFIX}{stamp}{started_ms % 1000:03d}"


@dataclass
class PaperBook:
    """A paper account as rebuilt from the ledger, ready for ``SimExchange.restore_account``."""

    name: str
    opening: dict[str, Decimal]
    spot: dict[str, Decimal] = field(default_factory=dict)
    futures_wallet: Decimal = ZERO
    positions: dict[str, SimPosition] = field(default_factory=dict)  # by Binance id, open ones only
    orders: list[SimOrder] = field(default_factory=list)
    trades: list[SimTrade] = field(default_factory=list)
    transfers: list[TransferRecord] = field(default_factory=list)
    next_id: int = 0
    as_of_ms: int = 0  # the last instant the ledger holds anything of this account
    last_fact_ms: int = 0  # the newest fill, transfer or funding payment
    counts: dict[str, int] = field(default_factory=dict)
    symbols: dict[str, str] = field(default_factory=dict)  # Binance id -> the ledger's spot symbol

    def held_symbols(self) -> list[str]:
        """Spot symbols of the open positions (their markets must exist even when no longer configured)."""
        return sorted(self.symbols[s] for s in self.positions if s in self.symbols)

    def restore_into(self, sim: Any) -> None:
        sim.restore_account(
            spot=self.spot,
            futures_wallet=self.futures_wallet,
            positions=list(self.positions.values()),
            orders=self.orders,
            trades=self.trades,
            transfers=self.transfers,
            next_id=self.next_id,
        )

    def summary(self) -> str:
        """One line for the ledger: what was replayed and what the account holds."""
        c = self.counts
        spot = ", ".join(f"{a} {v.normalize():f}" for a, v in sorted(self.spot.items()) if v)
        held = ", ".join(
            f"{s} {p.amt.normalize():f} @ {p.entry_price.normalize():f}" for s, p in sorted(self.positions.items())
        )
        return (
            f"{c.get('fills', 0)} fills, {c.get('transfers', 0)} transfers, {c.get('funding', 0)} funding "
            f"payments replayed; spot {spot or 'empty'}; futures wallet {self.futures_wallet.normalize():f} USDT; "
            f"positions {held or 'none'}"
        )


async def latest_paper_account(ledger: Recorder) -> str | None:
    """The paper account the ledger wrote to last (by its balance snapshots, pairs and account events)."""
    seen: dict[str, int] = {}

    def note(name: str, ts: int) -> None:
        if name.startswith(PAPER_PREFIX):
            seen[name] = max(seen.get(name, ts), ts)

    for b in await ledger.latest_balances():
        note(b.venue, b.ts_ms)
    for p in await ledger.list_pairs():
        note(p.venue, p.updated_ms)
    for ev in await _account_events(ledger):
        note(str((ev.details or {}).get("paper_account", "")), ev.ts_ms)
    return max(seen, key=lambda n: (seen[n], n)) if seen else None


async def _account_events(ledger: Recorder, name: str | None = None) -> list[Any]:
    events = await ledger.events(kinds=[EventKind.INFO], message_prefix=ACCOUNT_EVENT)
    return [e for e in events if name is None or (e.details or {}).get("paper_account") == name]


async def rebuild(ledger: Recorder, name: str, *, leverage: int, margin_mode: str) -> PaperBook:
    """Replay the account's facts, oldest first. Leverage and margin mode of a fill are the ones its
    run set at start (recorded in the account events), else the given ones."""
    events = await _account_events(ledger, name)
    opening = _opening(events)
    setups = sorted(
        (e.ts_ms, int(d.get("leverage", leverage)), str(d.get("margin_mode", margin_mode)))
        for e in events
        if (d := e.details or {})
    )
    fills = await ledger.list_fills(venue=name)
    transfers = [t for t in await ledger.list_transfers(venue=name) if t.status is TransferStatus.DONE]
    funding = await ledger.list_funding_payments(venue=name)
    orders = await ledger.list_orders(venue=name)
    book = PaperBook(name, opening, spot=dict(opening), futures_wallet=ZERO)
    facts: list[tuple[int, int, int, Any]] = [(f.ts_ms, 0, _int(f.venue_trade_id), f) for f in fills]
    facts += [(t.updated_ms, 1, _int(t.venue_tran_id), t) for t in transfers]
    facts += [(p.funding_time_ms, 2, 0, p) for p in funding]
    margins = [
        i
        for i in await ledger.list_intents([IntentKind.MARGIN], [IntentStatus.DONE])
        if (i.payload or {}).get("venue") == name
    ]
    facts += [(i.updated_ms, 3, i.id, i) for i in margins]
    for ts, _, _, fact in sorted(facts, key=lambda x: x[:3]):
        lev, mode = _setup_at(setups, ts, leverage, margin_mode)
        if isinstance(fact, Fill):
            _apply_fill(book, fact, lev, mode)
        elif isinstance(fact, Transfer):
            _apply_transfer(book, fact)
        elif isinstance(fact, Intent):
            _apply_margin(book, fact)
        else:
            _apply_funding(book, fact)
    book.positions = {s: p for s, p in book.positions.items() if p.amt != 0}
    book.orders = _orders(orders, fills)
    book.counts = {"fills": len(fills), "transfers": len(transfers), "funding": len(funding)}
    ids = [_int(f.venue_trade_id) for f in fills] + [_int(o.venue_order_id) for o in orders]
    ids += [_int(t.venue_tran_id) for t in await ledger.list_transfers(venue=name)]
    book.next_id = max(ids, default=0) + 1
    snapshots = [b.ts_ms for b in await ledger.latest_balances(venue=name)]
    pairs = [p.updated_ms for p in await ledger.list_pairs(venue=name)]
    book.last_fact_ms = max((ts for ts, *_ in facts), default=0)
    book.as_of_ms = max([book.last_fact_ms, *snapshots, *pairs, *(e.ts_ms for e in events)])
    short = {a: v for a, v in book.spot.items() if v < 0}
    if short or book.futures_wallet < 0:
        owed = ", ".join(f"{a} {v:f}" for a, v in sorted(short.items()))
        raise PaperAccountError(
            f"paper account {name} cannot be rebuilt from the ledger: its facts leave "
            f"{owed or f'the futures wallet at {book.futures_wallet:f} USDT'}; start with `fundbot run --dry-run "
            "--fresh` for a new paper account (the ledger keeps this one's history)"
        )
    return book


async def differences(ledger: Recorder, book: PaperBook) -> list[str]:
    """Where the rebuilt account disagrees with the last snapshot the daemon took of it, when no fact
    came after that snapshot (a liquidation is no ledger fact: the replay would still hold the short)."""
    rows = await ledger.latest_balances(venue=book.name)
    if not rows or max(r.ts_ms for r in rows) < book.last_fact_ms:
        return []
    at = max(r.ts_ms for r in rows)
    out = []
    seen = {r.asset: r.total for r in rows if r.wallet.value == "spot"}
    for asset in sorted(set(seen) | {a for a, v in book.spot.items() if v}):
        mine, theirs = book.spot.get(asset, ZERO), seen.get(asset, ZERO)
        if mine != theirs:
            out.append(f"spot {asset} {mine.normalize():f} (snapshot {theirs.normalize():f})")
    events = await ledger.events(kinds=[EventKind.INFO], since_ms=at, message_prefix="positions: ")
    if events:
        held = {exchange_id(s): Decimal(str(v["qty"])) for s, v in (events[-1].details or {})["positions"].items()}
        for sid in sorted(set(held) | set(book.positions)):
            mine = book.positions[sid].amt if sid in book.positions else ZERO
            if mine != held.get(sid, ZERO):
                out.append(f"{sid} position {mine.normalize():f} (snapshot {held.get(sid, ZERO).normalize():f})")
    return out


def _opening(events: Iterable[Any]) -> dict[str, Decimal]:
    for e in events:
        opening = (e.details or {}).get("opening")
        if opening:
            return {a: Decimal(str(v)) for a, v in opening.items()}
    return dict(PAPER_OPENING)  # accounts opened before the event existed started with this


def _setup_at(setups: list[tuple[int, int, str]], ts: int, leverage: int, margin_mode: str) -> tuple[int, str]:
    for at, lev, mode in reversed(setups):
        if at <= ts:
            return lev, mode
    return (setups[0][1], setups[0][2]) if setups else (leverage, margin_mode)


def _int(text: str | None) -> int:
    try:
        return int(text) if text else 0
    except ValueError:
        return 0


def _add(book: PaperBook, asset: str, amount: Decimal) -> None:
    book.spot[asset] = book.spot.get(asset, ZERO) + amount


def _n(x: Decimal) -> Decimal:
    """A ledger amount without the trailing zeros of NUMERIC(38, 18), so products stay exact in 28 digits."""
    return x.normalize() if x else ZERO


def _apply_fill(book: PaperBook, f: Fill, leverage: int, margin_mode: str) -> None:
    """The simulator's accounting of one trade (``SimExchange._fill``)."""
    base, quote = f.symbol.split(":")[0].split("/")
    sid = exchange_id(f.symbol)
    book.symbols.setdefault(sid, f.symbol.split(":")[0])
    buy = f.side.value == "buy"
    qty, price, fee = _n(f.quantity), _n(f.price), _n(f.fee)
    realized = ZERO
    if f.market is Leg.SPOT:
        _add(book, base, qty if buy else -qty)
        _add(book, quote, -qty * price if buy else qty * price)
        if fee and f.fee_asset:
            _add(book, f.fee_asset, -fee)
    else:
        pos = book.positions.get(sid)
        if pos is None:
            mode = "ISOLATED" if margin_mode == "isolated" else "CROSSED"
            pos = book.positions[sid] = SimPosition(sid, leverage, mode)
        old_amt = pos.amt
        realized, closed = pos.apply_fill(qty if buy else -qty, price)
        if pos.isolated:
            if closed and old_amt:
                pos.isolated_wallet -= q8(pos.isolated_wallet * closed / abs(old_amt))
            opened = qty - closed
            if opened > 0:
                pos.isolated_wallet += q8(opened * price / pos.leverage)
        book.futures_wallet += q8(realized) - fee
        pos.update_ms = f.ts_ms
    if f.venue_trade_id.isdigit():
        book.trades.append(
            SimTrade(
                f.market.value,
                sid,
                int(f.venue_trade_id),
                _int(f.venue_order_id),
                "BUY" if buy else "SELL",
                price,
                qty,
                price * qty,
                fee,
                f.fee_asset or "",
                q8(realized),
                bool(f.is_maker),
                f.ts_ms,
            )
        )


def _apply_transfer(book: PaperBook, t: Transfer) -> None:
    to_futures = t.to_wallet.value == "futures"
    if t.asset != "USDT":
        raise PaperAccountError(f"paper account {book.name}: transfer {t.client_id} of {t.asset} (only USDT moves)")
    amount = _n(t.amount)
    _add(book, t.asset, -amount if to_futures else amount)
    book.futures_wallet += amount if to_futures else -amount
    kind = "MAIN_UMFUTURE" if to_futures else "UMFUTURE_MAIN"
    if t.venue_tran_id and t.venue_tran_id.isdigit():
        book.transfers.append(TransferRecord(int(t.venue_tran_id), t.asset, amount, kind, t.updated_ms))


def _apply_margin(book: PaperBook, intent: Intent) -> None:
    """An isolated-margin change the treasury made (a done ``margin`` intent): the USDT moved between the
    cross part of the futures wallet and the position's own wallet (the wallet total is unchanged)."""
    payload = intent.payload or {}
    pos = book.positions.get(exchange_id(str(payload["symbol"])))
    if pos is None or not pos.isolated:
        raise PaperAccountError(
            f"paper account {book.name}: margin change {intent.client_id} for {payload.get('symbol')}, which "
            "holds no isolated position at that point of its history"
        )
    amount = _n(Decimal(str(payload["amount"])))
    pos.isolated_wallet += amount if payload.get("add") else -amount


def _apply_funding(book: PaperBook, p: FundingPayment) -> None:
    amount = _n(p.amount)
    book.futures_wallet += amount
    pos = book.positions.get(exchange_id(p.symbol))
    if pos is not None and pos.isolated and pos.amt:
        pos.isolated_wallet += amount


def _orders(orders: list[Order], fills: list[Fill]) -> list[SimOrder]:
    """The account's orders as the venue knows them, so a lookup by client id finds them again. A market
    order the ledger left open expired on the venue (it never rests); a limit order rests again."""
    trade_ids: dict[str, list[int]] = {}
    for f in fills:
        if f.venue_order_id and f.venue_trade_id.isdigit():
            trade_ids.setdefault(f.venue_order_id, []).append(int(f.venue_trade_id))
    out = []
    for o in orders:
        if not o.venue_order_id or not o.venue_order_id.isdigit():
            continue  # never acknowledged: the venue does not know it
        market = o.type == "market"
        if o.status == "open":
            status = "EXPIRED" if market else ("PARTIALLY_FILLED" if o.filled_qty else "NEW")
        else:
            status = _ORDER_STATUS.get(o.status, "EXPIRED")
        out.append(
            SimOrder(
                o.leg.value,
                exchange_id(o.symbol),
                int(o.venue_order_id),
                o.client_order_id,
                o.side.value.upper(),
                "MARKET" if market else "LIMIT",
                "GTC",
                o.quantity,
                o.price or ZERO,
                o.reduce_only,
                o.created_ms,
                o.updated_ms,
                status=status,
                executed_qty=o.filled_qty,
                cum_quote=o.filled_qty * (o.avg_price or ZERO),
                orig_type="MARKET" if market else "LIMIT",
                trade_ids=trade_ids.get(o.venue_order_id, []),
            )
        )
    return out
