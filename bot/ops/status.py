"""``fundbot status``: the book right now, read from the ledger.

Pairs (legs, hedge drift, notional, entry basis, funding earned, next funding from the newest
funding_rates row), wallets (latest balance snapshot of each), the collateral ratio as bot/treasury
defines it (futures margin balance / total short notional at the latest perp price), the distance to
liquidation when the engine recorded a liquidation price, open intents and the last errors and alerts.

Liquidation prices are read from event details: ``liquidation_price`` on an event with a symbol, or a
``positions`` mapping ``{symbol: {"liquidation_price": ...}}``; the newest value per symbol wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rich.text import Text

from bot.domain import ZERO, PairState, perp_symbol, spot_symbol
from bot.format import fmt_age, fmt_dec, fmt_pct, fmt_qty, iso_utc, to_jsonable
from bot.ledger.models import Event, EventKind, Wallet
from bot.ledger.reads import PriceBook, build_price_book, current_account, latest_funding_rate, select_events, to_dec
from bot.ledger.repository import Ledger

RECENT_ERRORS = 10
QUOTE = "USDT"


@dataclass(frozen=True, slots=True)
class CollateralView:
    margin_balance: Decimal | None
    short_notional: Decimal
    ratio: Decimal | None


def collateral_ratio(margin_balance: Decimal | None, short_notional: Decimal) -> Decimal | None:
    """Same definition as ``bot.treasury.maths.collateral_ratio``: undefined without a short."""
    if margin_balance is None or short_notional <= 0:
        return None
    return margin_balance / short_notional


def liquidation_prices(events: list[Event]) -> dict[str, Decimal]:
    """Newest recorded liquidation price per spot symbol (events oldest first)."""
    out: dict[str, Decimal] = {}
    for ev in events:
        d = ev.details if isinstance(ev.details, dict) else {}
        if ev.symbol and (price := to_dec(d.get("liquidation_price"))) is not None:
            out[spot_symbol(ev.symbol)] = price
        positions = d.get("positions")
        if isinstance(positions, dict):
            for sym, pos in positions.items():
                if isinstance(pos, dict) and (price := to_dec(pos.get("liquidation_price"))) is not None:
                    out[spot_symbol(str(sym))] = price
    return out


async def _events_with_liquidation(ledger: Ledger) -> list[Event]:
    rows = await select_events(ledger, kinds=None, limit=500, newest_first=True)
    return [ev for ev, _ in reversed(rows) if isinstance(ev.details, dict)]


def futures_margin_balance(wallets: list[dict[str, Any]]) -> Decimal | None:
    """USDT total of the newest futures snapshot (ccxt maps Binance's marginBalance to total)."""
    for w in wallets:
        if w["wallet"] == Wallet.FUTURES.value and QUOTE in w["assets"]:
            return w["assets"][QUOTE]["total"]
    return None


async def collect_status(ledger: Ledger, now_ms: int, prices: PriceBook | None = None) -> dict[str, Any]:
    """Everything ``status`` shows, as plain data (Decimals, epoch ms)."""
    prices = prices or await build_price_book(ledger)
    pairs = await ledger.list_pairs([s for s in PairState if s is not PairState.CLOSED])
    liq = liquidation_prices(await _events_with_liquidation(ledger))

    wallets_map: dict[tuple[str, str], dict[str, Any]] = {}
    latest = await ledger.latest_balances()
    account, others = current_account(latest)
    for row in latest:
        if others and row.venue != account:
            continue  # a paper account that a --fresh start left behind: the daemon has forgotten it
        wallet = row.wallet.value if hasattr(row.wallet, "value") else str(row.wallet)
        w = wallets_map.setdefault(
            (row.venue, wallet), {"venue": row.venue, "wallet": wallet, "ts_ms": row.ts_ms, "assets": {}}
        )
        w["assets"][row.asset] = {"free": row.free, "used": row.used, "total": row.total}
    wallets = list(wallets_map.values())

    pair_rows = []
    total_notional = ZERO
    for p in pairs:
        perp = p.perp_symbol or perp_symbol(p.symbol)
        spot_px = prices.latest(p.symbol) or p.entry_spot_price
        perp_px = prices.latest(perp) or p.entry_perp_price or spot_px
        notional = p.perp_qty * perp_px if perp_px is not None else None
        if notional is not None:
            total_notional += notional
        drift = p.spot_qty - p.perp_qty
        base = max(p.spot_qty, p.perp_qty)
        rate = await latest_funding_rate(ledger, p.symbol)
        liq_px = liq.get(p.symbol)
        liq_dist = (liq_px - perp_px) / perp_px if liq_px is not None and perp_px else None
        pair_rows.append(
            {
                "id": p.id,
                "symbol": p.symbol,
                "perp_symbol": perp,
                "state": p.state.value,
                "target_qty": p.target_qty,
                "spot_qty": p.spot_qty,
                "perp_qty": p.perp_qty,
                "hedge_drift": drift,
                "hedge_drift_pct": (drift / base) if base > 0 else ZERO,
                "spot_price": spot_px,
                "perp_price": perp_px,
                "notional": notional,
                "entry_basis": p.entry_basis,
                "funding_earned": p.funding_earned,
                "next_funding_ms": rate.funding_time_ms if rate is not None else None,
                "next_funding_rate": rate.rate if rate is not None else None,
                "rate_kind": rate.kind.value if rate is not None else None,
                "liquidation_price": liq_px,
                "liquidation_distance": liq_dist,
                "opened_ms": p.opened_ms,
            }
        )

    margin = futures_margin_balance(wallets)
    collateral = CollateralView(margin, total_notional, collateral_ratio(margin, total_notional))

    intents = [
        {
            "client_id": i.client_id,
            "kind": i.kind.value,
            "status": i.status.value,
            "pair_id": i.pair_id,
            "attempts": i.attempts,
            "last_error": i.last_error,
            "created_ms": i.created_ms,
            "age_ms": now_ms - i.created_ms,
        }
        for i in await ledger.open_intents()
    ]
    errors = [
        {"id": ev.id, "ts_ms": ev.ts_ms, "kind": ev.kind.value, "symbol": sym, "message": ev.message}
        for ev, sym in await select_events(
            ledger, kinds=[EventKind.ERROR.value, EventKind.ALERT.value], limit=RECENT_ERRORS, newest_first=True
        )
    ]
    return {
        "as_of_ms": now_ms,
        "pairs": pair_rows,
        "wallets": wallets,
        "earlier_accounts": others,
        "collateral": {
            "margin_balance": collateral.margin_balance,
            "short_notional": collateral.short_notional,
            "ratio": collateral.ratio,
        },
        "open_intents": intents,
        "recent_errors": errors,
    }


def status_json(status: dict[str, Any]) -> dict[str, Any]:
    return to_jsonable(status)


def render_status(st: dict[str, Any]) -> list[Text]:
    """Human lines (rich Text) for the status dict."""
    now = st["as_of_ms"]
    out: list[Text] = [Text(f"status as of {iso_utc(now)}", style="bold")]
    if st.get("clock_note"):
        out.append(Text(f"  ({st['clock_note']})", style="dim"))
    out.append(Text(f"pairs ({len(st['pairs'])} not closed)", style="bold cyan"))
    if not st["pairs"]:
        out.append(Text("  none"))
    for p in st["pairs"]:
        drift_style = "red" if p["hedge_drift"] != 0 else "green"
        line = Text("  ")
        line.append(f"{p['symbol']:<10} {p['state']:<11}", style="bold")
        line.append(f" spot {fmt_qty(p['spot_qty'])} / perp -{fmt_qty(p['perp_qty'])}")
        line.append(f"  drift {fmt_qty(p['hedge_drift'])} ({fmt_pct(p['hedge_drift_pct'], 2)})", style=drift_style)
        line.append(f"  notional {fmt_dec(p['notional'])} {QUOTE}")
        line.append(f"  entry basis {fmt_pct(p['entry_basis'], 3)}")
        line.append(f"  funding earned {fmt_dec(p['funding_earned'], 4, signed=True)} {QUOTE}", style="yellow")
        if p["next_funding_ms"] is not None:
            if p["rate_kind"] != "predicted":
                label = "last settled funding"
            else:  # a prediction whose instant has passed (the daemon stopped before the next scan)
                label = "next funding" if p["next_funding_ms"] > now else "last predicted funding"
            line.append(f"  {label} {iso_utc(p['next_funding_ms'])} at {fmt_pct(p['next_funding_rate'])}")
        if p["liquidation_price"] is not None:
            line.append(
                f"  liquidation {fmt_dec(p['liquidation_price'])} ({fmt_pct(p['liquidation_distance'], 2)} away)",
                style="magenta",
            )
        out.append(line)
    out.append(Text("wallets (latest snapshot)", style="bold cyan"))
    if st.get("earlier_accounts"):
        out.append(Text(f"  (earlier dry-run accounts left out: {', '.join(st['earlier_accounts'])})", style="dim"))
    if not st["wallets"]:
        out.append(Text("  no balance snapshot recorded"))
    for w in st["wallets"]:
        assets = ", ".join(
            f"{a} {fmt_qty(b['total'])} (free {fmt_qty(b['free'])})" for a, b in sorted(w["assets"].items())
        )
        out.append(
            Text(
                f"  {w['venue']}/{w['wallet']:<8} {assets}  at {iso_utc(w['ts_ms'])} ({fmt_age(now - w['ts_ms'])} ago)"
            )
        )
    c = st["collateral"]
    ratio_text = fmt_dec(c["ratio"], 3) if c["ratio"] is not None else "n/a (no short)"
    out.append(
        Text(
            f"collateral ratio {ratio_text}  (futures margin {fmt_dec(c['margin_balance'])} {QUOTE} / "
            f"short notional {fmt_dec(c['short_notional'])} {QUOTE})",
            style="bold",
        )
    )
    out.append(Text(f"open intents ({len(st['open_intents'])})", style="bold cyan"))
    for i in st["open_intents"]:
        err = f"  last error: {i['last_error']}" if i["last_error"] else ""
        out.append(
            Text(
                f"  {i['kind']:<8} {i['status']:<8} {i['client_id']}  attempts {i['attempts']}  "
                f"age {fmt_age(i['age_ms'])}{err}",
                style="yellow",
            )
        )
    out.append(Text(f"last errors and alerts ({len(st['recent_errors'])})", style="bold cyan"))
    for e in st["recent_errors"]:
        out.append(
            Text(
                f"  {iso_utc(e['ts_ms'])} {e['kind'].upper():<5} {e['symbol'] or '-'}  {e['message']}",
                style="red" if e["kind"] == "error" else "bold red",
            )
        )
    return out
