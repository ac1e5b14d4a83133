"""``fundbot report``: where the money came from, per pair and in total, checked against wallet equity.

Attribution over the window [since, now], every figure in USDT and signed as PnL (+ is a gain). Equity is
only known at balance snapshots, so with --since the window opens at the first snapshot at or after it:
fills and payments up to that instant are inside the opening equity, and legs held then are valued at
the prices observed there. Without --since it covers the ledger from its start.

- funding: the sum of funding payments (funding time in the window).
- price and basis: mark-to-market of both legs from their fills to the latest observed prices. A leg's
  MTM is sum((signed qty - fee paid in base) * (latest - fill price)); positions held before ``since``
  enter as if bought at the price observed at ``since``. The perp leg's part that is the change of the
  basis since each perp fill, qty * ((F - S)_now - (f - s*)) with s* the nearest spot fill of the pair
  (the other leg of the same execution), is ``basis``; the rest is ``price`` (the unhedged delta).
- fees, funding in other assets and slippage are priced by ``bot.ledger.attribution`` (the one attribution
  the backtest's summary uses too). Slippage is a memo, already inside price and basis: each fill against
  the reference price its order intent recorded (the leg's mid when the executor planned the action),
  positive = cost; fills without a recorded reference are counted in ``notes``.
- transfers are internal moves between our wallets: counted and summed, zero PnL.

The explained total is compared with the change of wallet equity between the first balance snapshot in
the window and the last one (spot wallet valued at observed prices, futures wallet at its margin balance,
which includes unrealised PnL; a wallet not snapshotted yet is empty); the difference is printed as the
unexplained residual. Coins valued at a price observed over an hour before the snapshot are flagged in
``notes``: the ledger holds no newer price, so their price move since then is part of the residual.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from rich.text import Text

from bot.domain import ZERO, Leg, Side, perp_symbol, spot_symbol
from bot.format import fmt_age, fmt_dec, iso_utc, to_jsonable
from bot.ledger.attribution import QUOTE, Costs, attribute, base_asset, reference_prices
from bot.ledger.models import BalanceSnapshot, Fill
from bot.ledger.reads import (
    PriceBook,
    all_balance_snapshots,
    all_fills,
    build_price_book,
    current_account,
    symbols_of,
)
from bot.ledger.repository import Ledger

STALE_PRICE_MS = 3_600_000  # a coin priced from an observation older than this is flagged


@dataclass
class PairPnl:
    symbol: str
    funding: Decimal = ZERO
    spot_mtm: Decimal | None = ZERO
    perp_mtm: Decimal | None = ZERO
    basis: Decimal | None = ZERO
    price: Decimal | None = ZERO
    fees: Decimal = ZERO  # negative: a cost
    slippage_cost: Decimal = ZERO  # memo (inside price/basis)
    fills: int = 0
    funding_payments: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def net(self) -> Decimal | None:
        if self.price is None or self.basis is None:
            return None
        return self.funding + self.price + self.basis + self.fees

    def to_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "funding": self.funding,
            "price": self.price,
            "basis": self.basis,
            "fees": self.fees,
            "net": self.net,
            "spot_mtm": self.spot_mtm,
            "perp_mtm": self.perp_mtm,
            "slippage_cost": self.slippage_cost,
            "fills": self.fills,
            "funding_payments": self.funding_payments,
        }


def signed_qty(f: Fill) -> Decimal:
    return f.quantity if f.side is Side.BUY else -f.quantity


def fee_in_base(f: Fill) -> Decimal:
    """The part of the fee that left the position itself (fee paid in the base asset of the market)."""
    return f.fee if f.fee_asset and f.fee_asset.upper() == base_asset(f.symbol).upper() else ZERO


@dataclass(frozen=True, slots=True)
class _LegFill:
    """A fill reduced to what MTM needs; synthetic ones stand for the position held at ``since``."""

    ts_ms: int
    qty: Decimal  # signed change of the position (fee in base removed)
    price: Decimal


def _nearest(fills: list[_LegFill], ts_ms: int) -> _LegFill | None:
    return min(fills, key=lambda f: abs(f.ts_ms - ts_ms), default=None)


def _mtm(fills: list[_LegFill], end: Decimal) -> Decimal:
    return sum((f.qty * (end - f.price) for f in fills), ZERO)


def _equity_at(
    snaps: dict[tuple[str, str], list[tuple[int, dict[str, BalanceSnapshot]]]],
    ts_ms: int,
    prices: PriceBook,
    not_before: int,
) -> tuple[Decimal, list[str], int]:
    """Sum of every wallet's latest snapshot in [not_before, ts_ms], non-quote assets at observed prices.

    A wallet with no snapshot yet counts as empty: the engine and the backtest write every wallet at one
    time, and a venue lists no row for a wallet that holds nothing (a futures wallet before the first
    transfer). Also returns the age of the oldest price used, so stale valuations can be flagged.
    """
    total = ZERO
    unvalued: list[str] = []
    price_age = 0
    for series in snaps.values():
        chosen = None
        for snap_ts, rows in series:
            if not_before <= snap_ts <= ts_ms:
                chosen = (snap_ts, rows)
        if chosen is None:
            continue
        snap_ts, rows = chosen
        for asset, row in rows.items():
            if asset.upper() == QUOTE:
                total += row.total
                continue
            if row.total == 0:
                continue
            sym = f"{asset}/{QUOTE}"
            px = prices.at(sym, snap_ts)
            if px is None:
                unvalued.append(f"{asset} {row.total}")
            else:
                total += row.total * px
                seen = prices.observed_at_or_before(sym, snap_ts)
                price_age = max(price_age, snap_ts - seen if seen is not None else 0)
    return total, unvalued, price_age


@dataclass
class _Window:
    """Where the report opens: facts at or before ``after`` (or before ``start``) are inside its opening
    equity; ``venue`` filters to one account when the ledger holds several."""

    start: int
    after: int | None
    venue: str | None
    snapshots: list[BalanceSnapshot]


def _open_window(snapshots: list[BalanceSnapshot], since_ms: int | None, notes: list[str]) -> _Window:
    account, others = current_account(snapshots)
    venue = account if others else None  # one account: no filter (facts written before any snapshot count)
    if others:
        notes.append(
            f"this ledger holds {len(others) + 1} accounts (`run --dry-run --fresh` opens a new paper account); "
            f"the report covers the newest, {account}"
        )
        snapshots = [r for r in snapshots if r.venue == account]
    start, after = 0, None
    if since_ms is not None:
        # The window opens at the first balance snapshot at or after --since: its equity already holds
        # every fill and payment up to its own instant, and its prices value the legs held then.
        start = min((r.ts_ms for r in snapshots if r.ts_ms >= since_ms), default=since_ms)
        after = start if any(r.ts_ms == start for r in snapshots) else None
        if start != since_ms:
            notes.append(f"the window opens at the first balance snapshot after --since: {iso_utc(start)}")
    return _Window(start, after, venue, snapshots)


def _legs_in_window(
    fills: list[Fill], w: _Window, prices: PriceBook, notes: list[str]
) -> tuple[list[Fill], dict[str, dict[Leg, list[_LegFill]]]]:
    """The window's fills, and each pair's leg movements (positions held at the start enter as bought at
    the price observed then)."""
    legs: dict[str, dict[Leg, list[_LegFill]]] = defaultdict(lambda: {Leg.SPOT: [], Leg.PERP: []})
    held_before: dict[str, dict[Leg, Decimal]] = defaultdict(lambda: {Leg.SPOT: ZERO, Leg.PERP: ZERO})
    inside = []
    for f in fills:
        key = spot_symbol(f.symbol)
        qty = signed_qty(f) - fee_in_base(f)
        if f.ts_ms < w.start or (w.after is not None and f.ts_ms <= w.after):
            held_before[key][f.market] += qty
            continue
        inside.append(f)
        legs[key][f.market].append(_LegFill(f.ts_ms, qty, f.price))
    for key, held in held_before.items():
        for leg, qty in held.items():
            if qty == 0:
                continue
            sym = key if leg is Leg.SPOT else perp_symbol(key)
            px = prices.at(sym, w.start)
            if px is None:
                notes.append(f"{key}: {leg.value} position held at start has no price; left out")
                continue
            legs[key][leg].insert(0, _LegFill(w.start, qty, px))
    return inside, legs


def _mark_legs(p: PairPnl, by_leg: dict[Leg, list[_LegFill]], prices: PriceBook, notes: list[str]) -> None:
    """Mark both legs to the latest observed prices and split the perp's part into basis and price."""
    key = p.symbol
    spot_fills, perp_fills = by_leg[Leg.SPOT], by_leg[Leg.PERP]
    s_end, f_end = prices.latest(key), prices.latest(perp_symbol(key))
    if (spot_fills and s_end is None) or (perp_fills and f_end is None):
        p.spot_mtm = p.perp_mtm = p.price = p.basis = None
        p.notes.append("no price observed to mark the legs")
        notes.append(f"{key}: no price observed to mark the legs; price and basis unknown")
        return
    p.spot_mtm = _mtm(spot_fills, s_end) if s_end is not None else ZERO
    p.perp_mtm = _mtm(perp_fills, f_end) if f_end is not None else ZERO
    basis = ZERO
    if perp_fills and f_end is not None:
        s_now = s_end if s_end is not None else f_end
        for pf in perp_fills:
            nearest = _nearest(spot_fills, pf.ts_ms)
            s_ref = nearest.price if nearest is not None else (prices.at(key, pf.ts_ms) or pf.price)
            basis += pf.qty * ((f_end - s_now) - (pf.price - s_ref))
    p.basis = basis
    p.price = p.spot_mtm + p.perp_mtm - basis


async def _transfers(ledger: Ledger, w: _Window, since_ms: int | None) -> dict[str, Any]:
    transfers = await ledger.list_transfers(since_ms=None if since_ms is None else w.start)
    by_direction: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    statuses: dict[str, int] = defaultdict(int)
    for t in transfers:
        if w.venue is not None and t.venue != w.venue:
            continue
        statuses[t.status.value] += 1
        if t.status.value == "done":
            by_direction[f"{t.from_wallet.value}->{t.to_wallet.value}"][t.asset] += t.amount
    return {
        "count": len(transfers),
        "by_status": dict(statuses),
        "done_by_direction": {d: dict(a) for d, a in by_direction.items()},
        "pnl": ZERO,
    }


def _equity(w: _Window, prices: PriceBook, pair_symbol: str | None, notes: list[str]) -> dict[str, Any]:
    """Wallet equity at the window's first and last balance snapshots."""
    snaps: dict[tuple[str, str], dict[int, dict[str, BalanceSnapshot]]] = defaultdict(lambda: defaultdict(dict))
    for row in w.snapshots:
        snaps[(row.venue, row.wallet.value)][row.ts_ms][row.asset] = row
    in_window = {k: [s for s in sorted(v.items()) if s[0] >= w.start] for k, v in snaps.items()}
    in_window = {k: v for k, v in in_window.items() if v}
    if not in_window:
        return dict.fromkeys(("first_ms", "first", "last_ms", "last", "change", "price_age_ms"))
    first_ms = min(v[0][0] for v in in_window.values())  # wallets not snapshotted yet are empty
    last_ms = max(v[-1][0] for v in in_window.values())
    first, unv1, age1 = _equity_at(in_window, first_ms, prices, w.start)
    last, unv2, age2 = _equity_at(in_window, last_ms, prices, w.start)
    age = max(age1, age2)
    for u in sorted(set(unv1 + unv2)):
        notes.append(f"equity: {u} not valued (no price observed)")
    if age > STALE_PRICE_MS:
        notes.append(
            f"equity: coins valued at prices observed up to {fmt_age(age)} before the snapshot "
            "(the ledger holds no newer price), so the residual includes their unrecorded price moves"
        )
    if pair_symbol:
        notes.append("equity covers the whole account, not only the selected pair")
    return {
        "first_ms": first_ms,
        "first": first,
        "last_ms": last_ms,
        "last": last,
        "change": last - first,
        "price_age_ms": age,
    }


def _total(pairs: list[PairPnl]) -> PairPnl:
    total = PairPnl("TOTAL")
    known = True
    price = basis = spot_mtm = perp_mtm = ZERO
    for p in pairs:
        total.funding += p.funding
        total.fees += p.fees
        total.slippage_cost += p.slippage_cost
        total.fills += p.fills
        total.funding_payments += p.funding_payments
        if p.price is None or p.basis is None or p.spot_mtm is None or p.perp_mtm is None:
            known = False
            continue
        price, basis, spot_mtm, perp_mtm = (
            price + p.price,
            basis + p.basis,
            spot_mtm + p.spot_mtm,
            perp_mtm + p.perp_mtm,
        )
    if known:
        total.price, total.basis, total.spot_mtm, total.perp_mtm = price, basis, spot_mtm, perp_mtm
    else:
        total.price = total.basis = total.spot_mtm = total.perp_mtm = None
    return total


async def collect_report(
    ledger: Ledger,
    now_ms: int,
    *,
    since_ms: int | None = None,
    pair_symbol: str | None = None,
    prices: PriceBook | None = None,
) -> dict[str, Any]:
    """The attribution as plain data (Decimals, epoch ms); see the module docstring for the method."""
    prices = prices or await build_price_book(ledger)
    only = set(symbols_of(pair_symbol)) if pair_symbol else None
    notes: list[str] = []
    w = _open_window(await all_balance_snapshots(ledger), since_ms, notes)
    # a payment at the opening snapshot's own instant is already inside its equity
    first_payment = None if since_ms is None else (w.start + 1 if w.after is not None else w.start)
    payments = [
        fp
        for fp in await ledger.list_funding_payments(since_ms=first_payment, venue=w.venue)
        if only is None or fp.symbol in only
    ]
    fills, legs = _legs_in_window(await all_fills(ledger, pair_symbol, w.venue), w, prices, notes)
    att = attribute(
        fills, payments, await reference_prices(ledger), lambda asset, ts: prices.at(f"{asset}/{QUOTE}", ts)
    )
    notes.extend(att.notes)
    pnl: dict[str, PairPnl] = {}
    for key in sorted(set(att.by_symbol) | set(legs)):
        c = att.by_symbol.get(key, Costs())
        p = pnl[key] = PairPnl(
            key,
            funding=c.funding,
            fees=-c.fees,
            slippage_cost=c.slippage,
            fills=c.fills,
            funding_payments=c.funding_payments,
        )
        if key in legs:
            _mark_legs(p, legs[key], prices, notes)
    equity = _equity(w, prices, pair_symbol, notes)
    total = _total(list(pnl.values()))
    explained = total.net
    residual = None
    if explained is not None and equity["change"] is not None:
        residual = equity["change"] - explained
    return {
        "as_of_ms": now_ms,
        "since_ms": w.start if since_ms is not None else None,
        "pair": pair_symbol,
        "pairs": [p.to_dict() for p in pnl.values()],
        "total": total.to_dict(),
        "transfers": await _transfers(ledger, w, since_ms),
        "equity": equity,
        "explained": explained,
        "residual": residual,
        "notes": notes,
    }


def report_json(rep: dict[str, Any]) -> dict[str, Any]:
    return to_jsonable(rep)


def _row(label: str, d: dict[str, Any]) -> Text:
    line = Text(f"  {label:<12}")
    for name in ("funding", "price", "basis", "fees", "net"):
        line.append(f" {name} {fmt_dec(d[name], 4, signed=True):>12}", style="bold" if name == "net" else "")
    line.append(f"   slippage {fmt_dec(d['slippage_cost'], 4)} (memo)  fills {d['fills']}", style="dim")
    line.append(f"  payments {d['funding_payments']}", style="dim")
    return line


def render_report(rep: dict[str, Any]) -> list[Text]:
    """Human lines: one per pair, the total, transfers, equity reconciliation and notes."""
    since = iso_utc(rep["since_ms"]) if rep["since_ms"] is not None else "the start of the ledger"
    out = [Text(f"PnL report from {since} to {iso_utc(rep['as_of_ms'])} ({QUOTE})", style="bold")]
    if not rep["pairs"]:
        out.append(Text("  no fills or funding in the window"))
    for d in rep["pairs"]:
        out.append(_row(d["symbol"], d))
    out.append(_row("TOTAL", rep["total"]))
    t = rep["transfers"]
    moved = "; ".join(
        f"{direction} " + ", ".join(f"{fmt_dec(v, 4)} {a}" for a, v in assets.items())
        for direction, assets in t["done_by_direction"].items()
    )
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(t["by_status"].items()))
    out.append(Text(f"transfers {t['count']} ({statuses or 'none'}) {moved}  internal: 0 PnL", style="magenta"))
    e = rep["equity"]
    if e["change"] is None:
        out.append(Text("equity: no balance snapshot in the window; nothing to reconcile against", style="yellow"))
    else:
        out.append(
            Text(
                f"equity {fmt_dec(e['first'], 4)} at {iso_utc(e['first_ms'])} -> {fmt_dec(e['last'], 4)} at "
                f"{iso_utc(e['last_ms'])}: change {fmt_dec(e['change'], 4, signed=True)}"
            )
        )
        res = rep["residual"]
        style = "green" if res is not None and abs(res) < Decimal("0.01") else "yellow"
        out.append(
            Text(
                f"explained {fmt_dec(rep['explained'], 4, signed=True)}  unexplained residual "
                f"{fmt_dec(res, 4, signed=True)}",
                style=style,
            )
        )
    for n in rep["notes"]:
        out.append(Text(f"note: {n}", style="dim"))
    return out
